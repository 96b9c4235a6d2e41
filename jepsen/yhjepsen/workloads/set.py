"""Set workload: unique creates (CreateUser), then the final reads of
every node's own state.  Element e is the user "s<e>-<tag>@set.jepsen"."""

from . import PASSWORD, Workload, list_users


class SetWorkload(Workload):
    name = "set"
    workers = 3
    think = (0.0, 0.02)

    def suffix(self):
        return "-%s@set.jepsen" % self.tag

    def op(self, p):
        el = next(self.values)
        typ, res, node = p.call("add", None, el, "CreateUser", {
            "UserEmail": "s%d%s" % (el, self.suffix()),
            "PassWord": PASSWORD})
        if typ == "ok":
            p.ok("add", None, el, node)

    def final(self, node_id):
        suffix = self.suffix()

        def read(c):
            out = []
            for u in list_users(c, suffix):
                email = u["UserEmail"]
                head = email[:-len(suffix)]
                if head.startswith("s") and head[1:].isdigit():
                    out.append(int(head[1:]))
                else:
                    out.append(email)
            return sorted(out, key=str)
        return self.final_read(node_id, read)
