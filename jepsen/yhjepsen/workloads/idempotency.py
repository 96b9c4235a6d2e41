"""Idempotency workload: CreateUser with RequestToken.  An indeterminate
create is retried with the same token and body on another node (up to
@attempts times); after an acked create, sometimes the same token is sent
with another body, which must be rejected with RetCode 180."""

import time

from . import PASSWORD, Workload, list_users


class Idempotency(Workload):
    name = "idempotency"
    workers = 3
    attempts = 5
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
            if typ == "fail":
                return
            # Indeterminate: retry with the same token on another node.
            p.shift += 1
            time.sleep(0.2 + 0.3 * attempt)

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
