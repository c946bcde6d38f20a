#!/usr/bin/env python3
"""Renders (and installs) a Helm chart with the real Helm library, for tests/deploy_manifests.rs.

No helm CLI is packaged on the registries this project's machines reach. The PyPI package
helm-sdkpy ships Helm v4's Go library built as a C shared library; this script calls that
library directly through ctypes (not the package's Python layer, which wants Python 3.12), so
the templates are rendered by Helm's own engine.

`helm template` is not among the library's entry points, so this installs the chart into the
cluster the kubeconfig names — the tests point it at a fresh fake-kube — with release storage in
memory (HELM_DRIVER=memory), and prints the release's rendered manifest on stdout.

Usage: render.py LIB KUBECONFIG NAMESPACE CHART [VALUES_JSON]
       render.py --lint LIB CHART
"""

import ctypes
import json
import os
import sys


def load(path):
    lib = ctypes.CDLL(path)
    lib.helm_sdkpy_last_error.restype = ctypes.c_void_p
    lib.helm_sdkpy_config_create.argtypes = [ctypes.c_char_p] * 4 + [ctypes.POINTER(ctypes.c_ulonglong)]
    lib.helm_sdkpy_install.argtypes = [ctypes.c_ulonglong] + [ctypes.c_char_p] * 5 + [ctypes.POINTER(ctypes.c_void_p)]
    lib.helm_sdkpy_lint.argtypes = [ctypes.c_ulonglong, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    return lib


def fail(lib, what):
    error = lib.helm_sdkpy_last_error()
    message = ctypes.string_at(error).decode() if error else "(no message)"
    sys.exit(f"helm {what} failed: {message}")


def config(lib, namespace, kubeconfig):
    handle = ctypes.c_ulonglong()
    if lib.helm_sdkpy_config_create(namespace.encode(), kubeconfig.encode(), b"", b"{}", ctypes.byref(handle)) != 0:
        fail(lib, "configuration")
    return handle


def main(argv):
    # Go reads the environment the process started with, not later changes: start again with
    # the release storage in memory.
    if os.environ.get("HELM_DRIVER") != "memory":
        os.execve(sys.executable, [sys.executable] + argv, dict(os.environ, HELM_DRIVER="memory"))
    if argv[1:2] == ["--lint"]:
        _, _, lib_path, chart = argv
        lib = load(lib_path)
        handle = config(lib, "default", "")
        out = ctypes.c_void_p()
        if lib.helm_sdkpy_lint(handle, chart.encode(), ctypes.byref(out)) != 0:
            fail(lib, "lint")
        print(ctypes.string_at(out.value).decode())
        return
    lib_path, kubeconfig, namespace, chart = argv[1:5]
    values = argv[5] if len(argv) > 5 else ""
    lib = load(lib_path)
    handle = config(lib, namespace, kubeconfig)
    options = {
        "wait": False,
        "timeout_seconds": 60,
        "create_namespace": True,
        "server_side_apply": "false",
        "disable_openapi_validation": True,
    }
    out = ctypes.c_void_p()
    rc = lib.helm_sdkpy_install(
        handle, b"cloud-lb-controller", chart.encode(), values.encode(), b"", json.dumps(options).encode(), ctypes.byref(out)
    )
    if rc != 0:
        fail(lib, "install")
    release = json.loads(ctypes.string_at(out.value).decode())
    print(release["manifest"])


if __name__ == "__main__":
    main(sys.argv)
