"""Builds a small OCI image layout, layer by layer, with what unpacking must get right.

    make_oci_image.py LAYOUT TAG BASE_ROOTFS_TAR [--extra NAME] [--no-write-through]
    make_oci_image.py LAYOUT TAG BASE_ROOTFS_TAR --mcp SITE_PACKAGES SERVER_PY [--bare]
    make_oci_image.py LAYOUT TAG BASE_ROOTFS_TAR --plain

The bottom layer is BASE_ROOTFS_TAR (a root filesystem as `tar -C ROOT -c .` writes it, such as
a sandbox image's), gzip-compressed. On top:

- layer 2: /opt/app/{keep,gone,data/old}, /etc/airlock-test/hardlink-source, a set-uid copy
  of /usr/bin/id at /usr/local/bin/suid-id, /rootlink -> /, /opt/app/through-root written
  through /rootlink/opt/app, /opt/app/dir-to-delete/x, /home/owned{,/notes} owned by 1000
- layer 3: whiteouts of /opt/app/gone and /opt/app/dir-to-delete, /opt/app/data made opaque
  (old hidden, new added), and a hard link /opt/app/hardlink to a file of the same layer

Config: User 1000, Env APP_MODE=test and PATH, WorkingDir /opt/app, Entrypoint
["/bin/sh", "-c"], Cmd ["echo entry"]. Another run with --extra NAME adds one layer with
/opt/NAME, sharing the first three (for the shared-layer pull).

With --plain, the base alone, run as root with PATH set and `sh` as its command: an ordinary
image for a Docker engine's tests.

With --mcp, an MCP server's image instead: the base, then one layer with the Python packages
of SITE_PACKAGES (a venv's, holding `mcp`) in /usr/local/lib/python3.11/dist-packages, the
server at /opt/mcp/server.py and an account `mcp` (uid 1500, home /srv/mcp). Config: User mcp,
Env MCP_MODE=image, WorkingDir /opt/mcp/state (in no layer), Entrypoint ["python3", "/opt/mcp/server.py"], Cmd
["image-default", "no-marker"] (the server's NAME and MARKER). With --bare, the layer also whites
out sh, dash, bash and sleep, as a distroless image has none of them.
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

layout, tag, base_tar = sys.argv[1], sys.argv[2], sys.argv[3]
extra = sys.argv[sys.argv.index("--extra") + 1] if "--extra" in sys.argv else None
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)


def put_blob(data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as blob:
        blob.write(data)
    return "sha256:" + digest, len(data)


def layer(build):
    """Builds a tar with build(add), returns (descriptor, diff_id)."""
    raw = io.BytesIO()
    tar = tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT)

    def add(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, link=""):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid, info.linkname = kind, mode, uid, gid, link
        info.mtime = 1700000000
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    build(add)
    tar.close()
    return compressed(raw.getvalue())


def compressed(data):
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()
    # A fixed time, so the same layer is the same blob in every image that has it.
    packed = gzip.compress(data, mtime=0)
    digest, size = put_blob(packed)
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}, diff_id


def base_layer():
    """The base, compressed once per layout: every image of the layout shares it."""
    stamp = base_tar + ".layer.json"
    key = "%s %d %d" % (os.path.abspath(base_tar), os.stat(base_tar).st_size, os.stat(base_tar).st_mtime_ns)
    if os.path.exists(stamp):
        cached = json.load(open(stamp))
        if cached["key"] == key and os.path.exists(os.path.join(blobs, cached["descriptor"]["digest"][7:])):
            return cached["descriptor"], cached["diff_id"]
    with open(base_tar, "rb") as source:
        descriptor, diff_id = compressed(source.read())
    json.dump({"key": key, "descriptor": descriptor, "diff_id": diff_id}, open(stamp, "w"))
    return descriptor, diff_id


layers = [base_layer()]

id_binary = open("/usr/bin/id", "rb").read()


def second(add):
    add("opt/app", tarfile.DIRTYPE, mode=0o755)
    add("opt/app/keep", data=b"kept\n")
    add("opt/app/gone", data=b"deleted by the next layer\n")
    add("opt/app/data", tarfile.DIRTYPE, mode=0o755)
    add("opt/app/data/old", data=b"hidden by an opaque directory\n")
    add("opt/app/dir-to-delete", tarfile.DIRTYPE, mode=0o755)
    add("opt/app/dir-to-delete/x", data=b"x\n")
    add("etc/airlock-test", tarfile.DIRTYPE, mode=0o755)
    add("etc/airlock-test/hardlink-source", data=b"linked\n")
    add("usr/local/bin/suid-id", data=id_binary, mode=0o4755)
    add("rootlink", tarfile.SYMTYPE, link="/")
    if "--no-write-through" not in sys.argv:  # Docker itself cannot `docker save` such a layer
        add("rootlink/opt/app/through-root", data=b"written through a link to /\n")
    add("home/owned", tarfile.DIRTYPE, mode=0o750, uid=1000, gid=1000)
    add("home/owned/notes", data=b"kept\n", uid=1000, gid=1000)


def third(add):
    add("opt/app/.wh.gone")
    add("opt/app/.wh.dir-to-delete")
    add("opt/app/data/.wh..wh..opq")
    add("opt/app/data/new", data=b"after the opaque marker\n")
    add("etc/airlock-test/hardlink-source", data=b"linked\n")
    add("opt/app/hardlink", tarfile.LNKTYPE, link="etc/airlock-test/hardlink-source")


def mcp_server(site_packages, server_py):
    def build(add):
        with tarfile.open(base_tar) as base:
            def base_file(name):
                for candidate in (name, "./" + name):
                    try:
                        return base.extractfile(candidate).read()
                    except KeyError:
                        pass
                return b""
            passwd, group = base_file("etc/passwd"), base_file("etc/group")
            bin_is_link = any(m.name in ("bin", "./bin") and m.issym() for m in base.getmembers())
        if "--bare" in sys.argv:  # as distroless: no shell and no sleep (whited out)
            for directory in ["usr/bin"] + ([] if bin_is_link else ["bin"]):
                for program in ("sh", "dash", "bash", "sleep"):
                    add(directory + "/.wh." + program)
        add("etc/passwd", data=passwd + b"mcp:x:1500:1500:MCP server:/srv/mcp:/bin/sh\n")
        add("etc/group", data=group + b"mcp:x:1500:\n")
        add("srv/mcp", tarfile.DIRTYPE, mode=0o755, uid=1500, gid=1500)
        add("opt/mcp", tarfile.DIRTYPE, mode=0o755)
        add("opt/mcp/server.py", data=open(server_py, "rb").read())
        target = "usr/local/lib/python3.11/dist-packages"
        add(target, tarfile.DIRTYPE, mode=0o755)
        for directory, dirs, files in os.walk(site_packages):
            relative = os.path.relpath(directory, site_packages)
            # pip and setuptools are the venv's own; the server needs neither.
            dirs[:] = sorted(d for d in dirs if relative != "." or not d.startswith(("pip", "setuptools", "_distutils")))
            for name in dirs:
                add(os.path.normpath(os.path.join(target, relative, name)), tarfile.DIRTYPE, mode=0o755)
            for name in sorted(files):
                path = os.path.join(directory, name)
                if name.endswith(".pyc"):
                    continue
                add(os.path.normpath(os.path.join(target, relative, name)), data=open(path, "rb").read(),
                    mode=0o755 if os.access(path, os.X_OK) else 0o644)
    return build


if "--plain" in sys.argv:
    run_config = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]}
elif "--mcp" in sys.argv:
    position = sys.argv.index("--mcp")
    layers.append(layer(mcp_server(sys.argv[position + 1], sys.argv[position + 2])))
    run_config = {
        "User": "mcp",
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "MCP_MODE=image"],
        "WorkingDir": "/opt/mcp/state",  # in no layer: made as docker run makes it
        "Entrypoint": ["python3", "/opt/mcp/server.py"],
        "Cmd": ["image-default", "no-marker"],
    }
else:
    layers.append(layer(second))
    layers.append(layer(third))
    if extra:
        layers.append(layer(lambda add: add("opt/" + extra, data=(extra + "\n").encode())))
    run_config = {
        "User": "1000",
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_MODE=test"],
        "WorkingDir": "/opt/app",
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo entry"],
    }

config = {
    "architecture": "amd64",
    "os": "linux",
    "config": run_config,
    "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
}
config_digest, config_size = put_blob(json.dumps(config).encode())
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
    "layers": [descriptor for descriptor, _ in layers],
}
manifest_digest, manifest_size = put_blob(json.dumps(manifest).encode())
index_path = os.path.join(layout, "index.json")
index = json.load(open(index_path)) if os.path.exists(index_path) else {"schemaVersion": 2, "manifests": []}
index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
index["manifests"].append({
    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest_size,
    "annotations": {"org.opencontainers.image.ref.name": tag},
})
json.dump(index, open(index_path, "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(layout, "oci-layout"), "w"))
print(manifest_digest)
