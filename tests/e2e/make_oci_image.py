"""Builds a small OCI image layout, layer by layer, with what unpacking must get right.

    make_oci_image.py LAYOUT TAG BASE_ROOTFS_TAR [--extra NAME]

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


with open(base_tar, "rb") as source:
    layers = [compressed(source.read())]

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


layers.append(layer(second))
layers.append(layer(third))
if extra:
    layers.append(layer(lambda add: add("opt/" + extra, data=(extra + "\n").encode())))

config = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "User": "1000",
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_MODE=test"],
        "WorkingDir": "/opt/app",
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo entry"],
    },
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
