#!/usr/bin/python3
"""Render Salt SLS/top files the way Salt's default jinja|yaml renderer does,
using the same libraries (Debian python3-jinja2, python3-yaml), then run the
state compiler's structural checks and a qvm.* argument check (the real
module ignores unknown arguments silently). See shared/reference/salt.md.

usage: saltrender.py --roots DIR --id MINION [--pillar FILE] sls NAME
       saltrender.py --roots DIR --id MINION [--pillar FILE] top FILE
Prints JSON on stdout; errors as "ERROR: ..." on stderr, exit 1.
"""
import argparse, json, os, sys
import jinja2, jinja2.ext, jinja2.sandbox, yaml
from collections import OrderedDict

class RenderError(Exception):
    pass

# --- Salt's YAML loader: SafeLoader, duplicate keys refused, 0644 -> 644 ---
class SaltLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        self.flatten_mapping(node)
        out = OrderedDict()
        for k, v in node.value:
            key = self.construct_object(k, deep=deep)
            if key in out:
                raise RenderError("found conflicting ID '%s'" % key)
            out[key] = self.construct_object(v, deep=deep)
        return out
    def construct_yaml_int(self, node):
        v = self.construct_scalar(node)
        if v.startswith("0") and v.isdigit() and len(v) > 1:
            return int(v, 10)
        return yaml.SafeLoader.construct_yaml_int(self, node)
SaltLoader.add_constructor("tag:yaml.org,2002:map", SaltLoader.construct_mapping)
SaltLoader.add_constructor("tag:yaml.org,2002:int", SaltLoader.construct_yaml_int)

def load_yaml(text):
    return yaml.load(text, Loader=SaltLoader)

# --- Salt's serializer tags: {% import_yaml "f" as x %}, {% load_yaml as x %} ---
class SerializerExtension(jinja2.ext.Extension):
    tags = {"import_yaml", "load_yaml"}
    def parse(self, parser):
        tok = next(parser.stream)
        if tok.value == "import_yaml":
            src = parser.parse_expression()
            parser.stream.expect("name:as")
            target = parser.parse_assign_target()
            call = self.call_method("_import", [src, jinja2.nodes.ContextReference()])
            return jinja2.nodes.Assign(target, call, lineno=tok.lineno)
        parser.stream.expect("name:as")
        target = parser.parse_assign_target()
        body = parser.parse_statements(("name:endload",), drop_needle=True)
        call = self.call_method("_load", [])
        return jinja2.nodes.Assign(target, jinja2.nodes.Call(jinja2.nodes.Name("_loadwrap", "load"), [], [], None, None), lineno=tok.lineno) if False else \
            jinja2.nodes.AssignBlock(target, None, body, lineno=tok.lineno)
    def _import(self, name, ctx):
        tpl = self.environment.get_template(name)
        return load_yaml(tpl.render(ctx.get_all()))

def pillar_get(pillar, key, default=None, merge=False, delimiter=":"):
    cur = pillar
    for part in key.split(delimiter):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return default
    if merge and isinstance(default, dict) and isinstance(cur, dict):
        return deep_merge(default, cur)
    return cur

def deep_merge(a, b):
    out = OrderedDict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out

class Salt(dict):
    def __getattr__(self, name):
        return _Mod(self, name)
class _Mod:
    def __init__(self, s, mod): self.s, self.mod = s, mod
    def __getattr__(self, fn): return self.s[self.mod + "." + fn]

def raise_(msg):
    raise RenderError(msg)

def environment(roots, ctx):
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(roots), undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols", SerializerExtension],
        keep_trailing_newline=True)
    env.globals.update(ctx)  # Salt puts the whole context in the globals
    env.globals["raise"] = raise_
    return env

def context(args, sls, tplfile):
    pillar = load_yaml(open(args.pillar).read()) if args.pillar else {}
    pillar = pillar or {}
    grains = {"id": args.id, "nodename": args.id, "os": "Fedora", "os_family": "RedHat", "kernel": "Linux"}
    salt = Salt()
    salt["pillar.get"] = lambda key, default=None, merge=False, **kw: pillar_get(pillar, key, default, merge)
    salt["pillar.items"] = lambda: pillar
    salt["grains.get"] = lambda key, default=None: pillar_get(grains, key, default)
    slspath = sls.replace(".", "/") if tplfile.endswith("init.sls") else "/".join(sls.split(".")[:-1])
    return {"salt": salt, "grains": grains, "pillar": pillar, "opts": {"id": args.id},
            "saltenv": "base", "sls": sls, "slspath": slspath, "sls_path": slspath.replace("/", "_"),
            "tpldir": slspath, "tplfile": tplfile}

def render(args, path, sls):
    env = environment(args.roots, context(args, sls, path))
    try:
        text = env.get_template(path).render()
    except jinja2.TemplateError as e:
        raise RenderError("%s: %s: %s" % (path, type(e).__name__, e))
    try:
        return load_yaml(text) or OrderedDict()
    except yaml.YAMLError as e:
        raise RenderError("%s: YAML: %s" % (path, e))

def sls_file(roots, name):
    rel = name.replace(".", "/")
    for root in roots:
        for cand in (rel + ".sls", rel + "/init.sls"):
            if os.path.exists(os.path.join(root, cand)):
                return cand
    raise RenderError("No matching sls found for '%s'" % name)

REQUISITES = {r + s for r in ("require", "watch", "onchanges", "onfail", "prereq", "listen", "use") for s in ("", "_any", "_in")}

# The qvm state module's keywords (shared/reference/salt.md §4).
QVM = {
    "present": {"template", "label", "class", "mem", "vcpus", "root-move-from", "root-copy-from", "flags"},
    "absent": {"flags"}, "exists": {"flags"}, "missing": {"flags"}, "running": set(), "halted": set(),
    "start": {"drive", "hddisk", "cdrom", "custom-config", "flags"},
    "shutdown": {"exclude", "flags"}, "kill": set(), "pause": set(), "unpause": set(),
    "prefs": {"autostart", "debug", "default-user", "default-dispvm", "devices-denied", "management-dispvm",
              "guivm", "audiovm", "template-for-dispvms", "dispvm-allowed", "virt-mode", "label", "last-backup",
              "include-in-backups", "installed-by-rpm", "ip", "kernel", "kernelopts", "mac", "maxmem", "memory",
              "netvm", "pci-strictreset", "pcidevs", "provides-network", "template", "qrexec-timeout",
              "updateable", "vcpus", "get", "action", "flags"},
    "features": {"enable", "disable", "default", "set", "list"},
    "service": {"enable", "disable", "default", "list"},
    "tags": {"add", "present", "del", "absent", "list"},
    "firewall": {"set", "list"},
    "run": {"cmd", "user", "exclude", "localcmd", "color-output", "flags"},
}
for k in list(QVM["prefs"]):
    if "-" in k:
        QVM["prefs"].add(k.replace("-", "_"))
LABELS = {"red", "orange", "yellow", "green", "gray", "blue", "purple", "black"}
LISTS = {"enable", "disable", "default", "add", "del", "present", "absent"}

def check_qvm(sid, fun, kw, errors):
    keys = set(kw) - {"name"} - REQUISITES - {"order"}
    if fun == "vm":
        known = set(QVM) | {"actions"}
        for k in keys - known:
            errors.append("%s: qvm.vm: unknown action keyword '%s'" % (sid, k))
        for action in keys & set(QVM):
            sub = OrderedDict()
            for item in kw[action] or []:
                if not isinstance(item, dict) or len(item) != 1:
                    errors.append("%s: qvm.vm %s: arguments must be one-key mappings" % (sid, action))
                    continue
                sub.update(item)
            check_qvm(sid + "/" + action, action, sub, errors)
        for a in kw.get("actions", []):
            if (a if isinstance(a, str) else next(iter(a))) not in QVM:
                errors.append("%s: qvm.vm: unknown action '%s'" % (sid, a))
        return
    if fun not in QVM:
        errors.append("%s: qvm.%s is not a qvm state" % (sid, fun))
        return
    for k in keys - QVM[fun]:
        errors.append("%s: qvm.%s does not accept '%s' (the real module would silently ignore it)" % (sid, fun, k))
    if "label" in kw and kw["label"] not in LABELS:
        errors.append("%s: label %r is not one of %s" % (sid, kw["label"], sorted(LABELS)))
    for k in keys & LISTS:
        if not isinstance(kw[k], list):
            errors.append("%s: qvm.%s %s must be a list" % (sid, fun, k))
    if fun == "features" and "set" in kw:
        for item in kw["set"] if isinstance(kw["set"], list) else [None]:
            if not isinstance(item, dict) or len(item) != 1 or not isinstance(next(iter(item.values())), str):
                errors.append("%s: qvm.features set: one-key mappings with string values (Qubes stores strings)" % sid)

def compile_high(high, errors):
    """Salt's _verify_high essentials; returns [{id, state, fun, args}]."""
    states = []
    if not isinstance(high, dict):
        raise RenderError("SLS did not render to a mapping")
    for sid, body in high.items():
        if sid in ("include", "extend", "exclude"):
            errors.append("%s: not supported by this formula's checks" % sid)
            continue
        if isinstance(body, str):  # short form: id: pkg.installed
            body = {body: []}
        if not isinstance(body, dict):
            errors.append("%s: must map to state declarations" % sid)
            continue
        seen_mod = set()
        for decl, args in body.items():
            if "." not in decl:
                errors.append("%s: '%s' is not module.function" % (sid, decl))
                continue
            mod, fun = decl.split(".", 1)
            if mod in seen_mod:
                errors.append("%s: declares module '%s' twice" % (sid, mod))
            seen_mod.add(mod)
            if args is None:
                errors.append("%s: %s: short declaration with a trailing colon" % (sid, decl))
                continue
            kw = OrderedDict()
            for item in args:
                if isinstance(item, dict) and len(item) == 1:
                    kw.update(item)
                elif not isinstance(item, str):
                    errors.append("%s: %s: argument %r is not a string or a one-key mapping" % (sid, decl, item))
            kw.setdefault("name", sid)
            states.append({"id": sid, "state": mod, "fun": fun, "args": kw})
    ids = {(s["state"], s["id"]) for s in states} | {(s["state"], s["args"]["name"]) for s in states}
    for s in states:
        for req in REQUISITES & set(s["args"]):
            val = s["args"][req]
            if not isinstance(val, list):
                errors.append("%s: %s needs to be formed as a list" % (s["id"], req))
                continue
            for r in val:
                if not isinstance(r, dict) or len(r) != 1:
                    errors.append("%s: %s entries are one-key mappings" % (s["id"], req))
                    continue
                (mod, target), = r.items()
                if "." in mod:
                    errors.append("%s: Invalid requisite type '%s'" % (s["id"], mod))
                elif (mod, target) not in ids:
                    errors.append("%s: Requisite %s: %s matches no state" % (s["id"], mod, target))
        if s["state"] == "qvm":
            check_qvm(s["id"], s["fun"], s["args"], errors)
        if s["state"] == "file" and s["fun"] == "managed" and "mode" in s["args"] and not isinstance(s["args"]["mode"], str):
            errors.append("%s: mode %r must be a quoted string (YAML reads 0664 as 664)" % (s["id"], s["args"]["mode"]))
    return states

def top_matches(args, top):
    out = []
    for env, targets in (top or {}).items():
        for target, entries in targets.items():
            entries = list(entries)
            match = "glob"
            for e in entries:
                if isinstance(e, dict) and "match" in e:
                    match = e["match"]
            if match == "nodegroup":
                ok = (target == "dom0" and args.id == "dom0") or (target == "vm" and args.id != "dom0")
            elif match == "glob":
                import fnmatch
                ok = fnmatch.fnmatch(args.id, target)
            else:
                raise RenderError("top: match %s not emulated" % match)
            if ok:
                out += [e for e in entries if isinstance(e, str)]
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--roots", action="append", required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--pillar")
    ap.add_argument("mode", choices=["sls", "top"])
    ap.add_argument("name")
    args = ap.parse_args()
    errors = []
    try:
        if args.mode == "top":
            top = render(args, args.name, "top")
            slss = top_matches(args, top)
            states = []
            for name in slss:
                states += compile_high(render(args, sls_file(args.roots, name), name), errors)
            result = {"sls": slss, "states": states}
        else:
            states = compile_high(render(args, sls_file(args.roots, args.name), args.name), errors)
            result = {"sls": [args.name], "states": states}
        seen = set()
        for s in result["states"]:
            if s["id"] in seen:
                errors.append("Detected conflicting IDs, SLS IDs need to be globally unique: %s" % s["id"])
            seen.add(s["id"])
    except (RenderError, jinja2.TemplateError) as e:
        errors.append(str(e))
        result = None
    for e in errors:
        print("ERROR: " + e, file=sys.stderr)
    if errors:
        sys.exit(1)
    json.dump(result, sys.stdout, indent=1)
    print()

if __name__ == "__main__":
    main()
