"""Students: training, inference (torch and ONNX), predict, benchmark, model card."""
