"""gannet_proto: C++ (and optionally gRPC) code from one .proto with the system protoc.

Generated sources get their own cc_library so the slow gRPC compile units stay small and split
(../shared/BUILD_NOTES.md). Imports resolve from the workspace root, e.g. `import "proto/x.proto"`.
"""

def gannet_proto(name, src, deps = [], grpc = False, visibility = None):
    """Defines `name` (a cc_library) over the code protoc generates from `src`.

    Args:
      name: the cc_library's name.
      src: one .proto file in this package.
      deps: other gannet_proto targets whose .proto files `src` imports.
      grpc: also generate gRPC service stubs (*.grpc.pb.{h,cc}).
      visibility: of the cc_library.
    """
    base = src[:-len(".proto")]
    pkg = native.package_name()
    outs = [base + ".pb.h", base + ".pb.cc"]
    if grpc:
        outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    dep_srcs = [d + "_srcs" for d in deps]
    plugin = ""
    if grpc:
        plugin = " --grpc_out=$(GENDIR) --plugin=protoc-gen-grpc=$$(which grpc_cpp_plugin)"
    native.filegroup(
        name = name + "_srcs",
        srcs = [src] + dep_srcs,
        visibility = visibility,
    )
    native.genrule(
        name = name + "_gen",
        srcs = [src] + dep_srcs,
        outs = outs,
        cmd = "protoc -I. --cpp_out=$(GENDIR)" + plugin + " " + pkg + "/" + src,
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + (["//third_party/system:grpc"] if grpc else ["//third_party/system:protobuf"]),
        visibility = visibility,
    )
