"""Idempotency workload: creates with RequestToken.

History:
  f "create", key = token = the RequestToken, invoke value = email;
             ok value = {"email": email, "user": UserID}.  An indeterminate
             create is retried with the same token (and body) on another
             node: several "create" ops share one token.
  f "reuse",  key = token of an earlier create, invoke value = another
             email: the same token with another body, which must be
             rejected with RetCode 180.
  f "read",   final reads, value = [[email, UserID], ...] per node.

Every token's email is unique, so CreateUser can only answer "already
exists" (161) for it if the token was not honoured.

Anomalies:
  token-not-honored     an attempt with the token got 161, or oks of one
                        token returned different UserIDs
  lost-ack              an acked token's user is missing on a node
  wrong-id              the user present is not the UserID that was acked
  duplicate             a token's email appears more than once on a node
  failed-value-visible  a token whose every attempt definitely failed has an
                        effect
  reuse-accepted        the same token with another body was not rejected
                        with 180 (or its body took effect)
  phantom               a user of the workload's domain nobody created
"""

from collections import defaultdict

RETCODE_EXISTS = 161
RETCODE_TOKEN = 180
# Definite rejections that do not say anything about the token.
RETCODE_TRANSIENT = (191, 192, 190)


def _retcode(err):
    if isinstance(err, dict):
        rc = err.get("RetCode")
        if isinstance(rc, int):
            return rc
    return None


def check(ops, expect_nodes=None):
    attempts = defaultdict(list)
    reuses = []
    reads = []
    anomalies = []
    for op in ops:
        if op.f == "create":
            if op.key is None:
                raise ValueError("create without token: %r" % (op,))
            attempts[op.key].append(op)
        elif op.f == "reuse":
            reuses.append(op)
        elif op.f == "read":
            reads.append(op)
        else:
            raise ValueError("idempotency history has f=%r" % op.f)
    email_of = {}
    for tok, ats in attempts.items():
        emails = {a.invoke_value for a in ats}
        if len(emails) != 1:
            raise ValueError("token %s used with several emails in creates "
                             "(use f=reuse for that)" % tok)
        email = emails.pop()
        if email in email_of.values():
            raise ValueError("email %r used by two tokens" % email)
        email_of[tok] = email
    token_of_email = {e: t for t, e in email_of.items()}
    reuse_emails = {}
    for r in reuses:
        if r.key not in email_of:
            raise ValueError("reuse of unknown token %r" % r.key)
        reuse_emails[r.invoke_value] = r
    acked = {}
    status = {}
    for tok, ats in attempts.items():
        uids = {a.value.get("user") for a in ats if a.type == "ok"}
        for a in ats:
            if a.type != "ok" and _retcode(a.error) == RETCODE_EXISTS:
                anomalies.append({
                    "type": "token-not-honored", "token": tok,
                    "message": "attempt with token %s got 'already exists'"
                               " (161) instead of the first result" % tok,
                    "op": a.describe()})
        if len(uids) > 1:
            anomalies.append({
                "type": "token-not-honored", "token": tok,
                "message": "token %s acked with different UserIDs %r" %
                           (tok, sorted(uids)),
                "ops": [a.describe() for a in ats if a.type == "ok"]})
        if uids:
            acked[tok] = sorted(uids)[0]
            status[tok] = "ok"
        elif any(a.type == "info" for a in ats):
            status[tok] = "info"
        else:
            status[tok] = "fail"
    for r in reuses:
        if r.type == "ok":
            anomalies.append({
                "type": "reuse-accepted", "token": r.key,
                "message": "token %s reused with another body was accepted"
                           % r.key, "op": r.describe()})
        elif r.type == "fail":
            rc = _retcode(r.error)
            # rc None: a refused connection, the request never left.
            if rc not in (None, RETCODE_TOKEN) + RETCODE_TRANSIENT:
                anomalies.append({
                    "type": "reuse-accepted", "token": r.key,
                    "message": "token %s reused with another body got "
                               "RetCode %r, expected 180" % (r.key, rc),
                    "op": r.describe()})
    ok_reads = [r for r in reads if r.type == "ok"]
    for r in reads:
        if r.type != "ok":
            anomalies.append({"type": "final-read-failed", "node": r.node,
                              "message": "final read from %s did not "
                                         "succeed: %r" % (r.node, r.error)})
    if not ok_reads:
        anomalies.append({"type": "no-final-read",
                          "message": "no successful final read"})
    if expect_nodes:
        got = {r.node for r in ok_reads}
        for n in expect_nodes:
            if n not in got:
                anomalies.append({"type": "final-read-missing", "node": n,
                                  "message": "no successful final read "
                                             "from %s" % n})
    present_info = set()
    for r in ok_reads:
        if not isinstance(r.value, list):
            raise ValueError("final read value must be a list")
        by_email = defaultdict(list)
        for item in r.value:
            email, uid = item[0], item[1]
            by_email[email].append(uid)
        for tok, email in sorted(email_of.items()):
            uids = by_email.get(email, [])
            st = status[tok]
            if len(uids) > 1:
                anomalies.append({
                    "type": "duplicate", "token": tok, "node": r.node,
                    "message": "token %s has %d effects on %s: %r" %
                               (tok, len(uids), r.node, uids)})
            if st == "ok":
                if not uids:
                    anomalies.append({
                        "type": "lost-ack", "token": tok, "node": r.node,
                        "message": "acked create %s (%s) missing on %s" %
                                   (tok, acked[tok], r.node)})
                elif acked[tok] not in uids:
                    anomalies.append({
                        "type": "wrong-id", "token": tok, "node": r.node,
                        "message": "create %s acked UserID %s but %s holds "
                                   "%r" % (tok, acked[tok], r.node, uids)})
            elif st == "fail" and uids:
                anomalies.append({
                    "type": "failed-value-visible", "token": tok,
                    "node": r.node,
                    "message": "create %s failed on every attempt but is "
                               "present on %s" % (tok, r.node),
                    "errors": [a.error for a in attempts[tok]]})
            elif st == "info" and uids:
                present_info.add(tok)
        for email, uids in by_email.items():
            if email in token_of_email:
                continue
            if email in reuse_emails:
                anomalies.append({
                    "type": "reuse-accepted",
                    "token": reuse_emails[email].key, "node": r.node,
                    "message": "body of a reused token (%s) took effect on "
                               "%s" % (email, r.node)})
            else:
                anomalies.append({
                    "type": "phantom", "node": r.node,
                    "message": "user %s on %s was never created" %
                               (email, r.node)})
    stats = {"tokens": len(attempts),
             "attempts": sum(len(v) for v in attempts.values()),
             "acked": len(acked),
             "failed": sum(1 for s in status.values() if s == "fail"),
             "info": sum(1 for s in status.values() if s == "info"),
             "info_present": len(present_info),
             "retried": sum(1 for v in attempts.values() if len(v) > 1),
             "reuses": len(reuses), "final_reads": len(ok_reads)}
    return {"valid": not anomalies, "anomalies": anomalies, "stats": stats}
