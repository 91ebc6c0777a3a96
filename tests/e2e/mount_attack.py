"""A privileged container of a sandbox's Docker engine attacks a directory bound into it, with
the system calls themselves (an image need not have mount(8)):

    mount_attack.py remount DIR     makes DIR's mount writable; prints "remount ok" or the error
    mount_attack.py overlay DIR     mounts an overlay whose upper directory is DIR/.git and
                                    writes hooks/post-checkout through it (beneath any mount on
                                    DIR/.git); prints "overlay wrote" or the step that failed

Run against the workspace, both must fail; against a writable directory (the companion), both
work.
"""
import ctypes, os, sys, tempfile

libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096


def mount(source, target, fstype, flags, data):
    encode = lambda text: text.encode() if text is not None else None
    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        return os.strerror(ctypes.get_errno())
    return None


what, directory = sys.argv[1], sys.argv[2]
if what == "remount":
    error = mount(None, directory, None, MS_REMOUNT | MS_BIND, None)
    print("remount", error or "ok")
else:
    lower, merged = tempfile.mkdtemp(), tempfile.mkdtemp()
    # The work directory: on the upper's mount, outside the upper directory (the agent may have
    # made both already, where it can write).
    upper, work = os.path.join(directory, ".git"), os.path.join(directory, ".ovl-work")
    for path in (upper, work):
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as error:
            print("overlay directories", error.strerror)
            sys.exit(0)
    options = "lowerdir=%s,upperdir=%s,workdir=%s,userxattr" % (lower, upper, work)
    error = mount("overlay", merged, "overlay", 0, options)
    if error:
        print("overlay mount", error)
        sys.exit(0)
    try:
        os.makedirs(os.path.join(merged, "hooks"), exist_ok=True)
        with open(os.path.join(merged, "hooks", "post-checkout"), "w") as hook:
            hook.write("#!/bin/sh\necho planted\n")
        print("overlay wrote")
    except OSError as error:
        print("overlay write", error.strerror)
