"""Set workload: unique creates, then final reads from every node.

History:
  f "add",  value = element (int), one per element.
  f "read", value = list of the elements the node holds (duplicates kept),
            node = the node read; the final reads after healing.

Valid iff every node's final read succeeded and, in each:
  * every acknowledged add is present exactly once (lost-ack, duplicate),
  * no definitely failed add is present (failed-value-visible),
  * no element appears that was never added (phantom),
  * an add with unknown outcome appears at most once.
"""

from collections import Counter


def check(ops, expect_nodes=None):
    adds = {}
    reads = []
    anomalies = []
    for op in ops:
        if op.f == "add":
            el = op.invoke_value
            if el in adds:
                raise ValueError("element %r added twice" % (el,))
            adds[el] = op
        elif op.f == "read":
            reads.append(op)
        else:
            raise ValueError("set history has f=%r" % op.f)
    acked = {e for e, op in adds.items() if op.type == "ok"}
    failed = {e for e, op in adds.items() if op.type == "fail"}
    info = {e for e, op in adds.items() if op.type == "info"}
    ok_reads = [r for r in reads if r.type == "ok"]
    read_nodes = sorted({r.node for r in ok_reads})
    for r in reads:
        if r.type != "ok":
            anomalies.append({"type": "final-read-failed", "node": r.node,
                              "message": "final read from %s did not "
                                         "succeed: %r" % (r.node, r.error)})
    if not ok_reads:
        anomalies.append({"type": "no-final-read",
                          "message": "no successful final read"})
    if expect_nodes:
        for n in expect_nodes:
            if n not in read_nodes:
                anomalies.append({"type": "final-read-missing", "node": n,
                                  "message": "no successful final read "
                                             "from %s" % n})
    info_seen = set()
    for r in ok_reads:
        if not isinstance(r.value, list):
            raise ValueError("final read value must be a list")
        c = Counter(r.value)
        lost = sorted(acked - set(c))
        if lost:
            anomalies.append({
                "type": "lost-ack", "node": r.node, "elements": lost[:50],
                "count": len(lost),
                "message": "%d acknowledged add(s) missing on %s" %
                           (len(lost), r.node)})
        dup = sorted(e for e, n in c.items() if n > 1)
        if dup:
            anomalies.append({
                "type": "duplicate", "node": r.node, "elements": dup[:50],
                "count": len(dup),
                "message": "%d element(s) present more than once on %s" %
                           (len(dup), r.node)})
        vis = sorted(failed & set(c))
        if vis:
            anomalies.append({
                "type": "failed-value-visible", "node": r.node,
                "elements": vis[:50], "count": len(vis),
                "errors": [adds[e].error for e in vis[:5]],
                "message": "%d definitely failed add(s) visible on %s" %
                           (len(vis), r.node)})
        phantom = sorted((e for e in c if e not in adds), key=str)
        if phantom:
            anomalies.append({
                "type": "phantom", "node": r.node,
                "elements": phantom[:50], "count": len(phantom),
                "message": "%d element(s) on %s were never added" %
                           (len(phantom), r.node)})
        info_seen |= info & set(c)
    # All nodes must agree on the unknown-outcome elements as well.
    if len(ok_reads) > 1:
        base = set(ok_reads[0].value)
        for r in ok_reads[1:]:
            diff = sorted(base ^ set(r.value), key=str)
            if diff:
                anomalies.append({
                    "type": "replicas-differ", "nodes":
                    [ok_reads[0].node, r.node], "elements": diff[:50],
                    "count": len(diff),
                    "message": "final reads of %s and %s differ in %d "
                               "element(s)" % (ok_reads[0].node, r.node,
                                               len(diff))})
    stats = {"adds": len(adds), "acked": len(acked), "failed": len(failed),
             "info": len(info), "info_present": len(info_seen),
             "final_reads": len(ok_reads), "nodes": read_nodes}
    return {"valid": not anomalies, "anomalies": anomalies, "stats": stats}
