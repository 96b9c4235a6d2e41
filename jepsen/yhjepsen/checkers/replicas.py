"""Replicas converge: after healing, every node reports the same
AppliedIndex and Digest (DescribeCluster).

Input (replicas.json written by the runner):
  {"nodes": ["n1", ...],
   "rounds": [[{"node": "n1", "AppliedIndex": int, "Digest": hex,
                "CommitIndex": int, "State": str, "Term": int}
               | {"node": "n1", "error": str}, ...], ...],
   "observed": [{"node", "AppliedIndex", "Digest", "time"}, ...]}
Rounds are polls of every node, repeated until they agree or a deadline;
"observed" (optional) are (index, digest) pairs the nodes reported during
the run (the cluster monitor's polls, the corrupt nemesis's checks).

Valid iff some round has every node answering with one AppliedIndex and one
Digest, and no two nodes ever reported different digests for the same
AppliedIndex, in the rounds or during the run (that is divergence even if a
later round agrees).
"""


def check(data):
    nodes = data.get("nodes") or []
    rounds = data.get("rounds") or []
    anomalies = []
    seen = {}  # index -> {digest: [nodes]}
    converged = None
    for i, rnd in enumerate(rounds):
        answers = {}
        for ob in rnd:
            if "error" in ob:
                continue
            idx = ob.get("AppliedIndex")
            dg = ob.get("Digest")
            if not isinstance(idx, int) or not isinstance(dg, str):
                continue
            answers[ob["node"]] = (idx, dg)
            seen.setdefault(idx, {}).setdefault(dg, set()).add(ob["node"])
        if (converged is None and nodes and
                all(n in answers for n in nodes) and
                len(set(answers.values())) == 1):
            converged = {"round": i, "AppliedIndex": answers[nodes[0]][0],
                         "Digest": answers[nodes[0]][1]}
    for ob in data.get("observed") or []:
        idx, dg = ob.get("AppliedIndex"), ob.get("Digest")
        if isinstance(idx, int) and isinstance(dg, str):
            seen.setdefault(idx, {}).setdefault(dg, set()).add(ob["node"])
    for idx in sorted(seen):
        if len(seen[idx]) > 1:
            anomalies.append({
                "type": "divergence", "AppliedIndex": idx,
                "digests": {d: sorted(ns) for d, ns in seen[idx].items()},
                "message": "nodes report different digests at applied "
                           "index %d" % idx})
    if converged is None:
        last = rounds[-1] if rounds else []
        anomalies.append({
            "type": "not-converged", "last_round": last,
            "message": "nodes %s never reported the same AppliedIndex and "
                       "Digest in %d polls" % (",".join(nodes),
                                               len(rounds))})
    return {"valid": not anomalies, "anomalies": anomalies,
            "stats": {"rounds": len(rounds), "converged": converged,
                      "observed": len(data.get("observed") or [])}}
