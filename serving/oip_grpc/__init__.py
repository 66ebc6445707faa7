"""Generated code of the Open Inference Protocol's gRPC service (`make grpc-code`).

`open_inference_grpc.proto` is the protocol's own file, kept with its licence (LICENSE);
the `_pb2` modules are generated from it by grpcio-tools and must not be edited by hand.
"""
