"""Idempotency workload: CreateUser with RequestToken.  An indeterminate
create (or one whose node refused the connection) is retried with the same
token and body on another node (up to @attempts times); after an acked
create, sometimes the same token is sent with another body, which must be
rejected with RetCode 180."""

import time

from ..client import TransportError
from . import PASSWORD, Workload, list_users


class Idempotency(Workload):
    name = "idempotency"
    workers = 3
    attempts = 8
    reuse_prob = 0.1
    think = (0.0, 0.02)

    def suffix(self):
        return "-%s@idem.jepsen" % self.tag

    def op(self, p):
        n = next(self.values)
        tok = "yhj-%s-%d" % (self.tag, n)
        email = "i%d%s" % (n, self.suffix())
        req = {"UserEmail": email, "PassWord": PASSWORD,
               "RequestToken": tok}
        for attempt in range(self.attempts):
            typ, res, node = p.call("create", tok, email, "CreateUser",
                                    dict(req), token=tok)
            if typ == "ok":
                p.ok("create", tok, {"email": email,
                                     "user": res.get("UserID")}, node,
                     token=tok)
                if p.rng.random() < self.reuse_prob:
                    self.reuse(p, tok, n)
                return
            if typ == "fail" and not isinstance(res, TransportError):
                return
            # Indeterminate, or the node was down (connection refused, so
            # that attempt never left; an earlier one may still have
            # happened): retry with the same token on another node until
            # some node answers definitely.  Giving up on a refused
            # connection left most indeterminate creates unresolved after
            # a leader kill, and the dedup path untested.
            p.shift += 1
            time.sleep(min(1.0, 0.2 + 0.2 * attempt))

    def reuse(self, p, tok, n):
        other = "r%d%s" % (n, self.suffix())
        typ, res, node = p.call("reuse", tok, other, "CreateUser", {
            "UserEmail": other, "PassWord": PASSWORD, "RequestToken": tok},
            token=tok)
        if typ == "ok":
            p.ok("reuse", tok, {"email": other, "user": res.get("UserID")},
                 node, token=tok)

    def final(self, node_id):
        suffix = self.suffix()

        def read(c):
            return sorted([u["UserEmail"], u["UserID"]]
                          for u in list_users(c, suffix))
        return self.final_read(node_id, read)
