"""WebDiT's training recipe as a package: config (sizes, scheduler, presets), models, data,
tokenizer, pipeline (the one reference sampler), stages (training), export (model folder format 2),
fixtures, evaluate, modelcard, compress (fp16 / int8 weight storage). The command-line scripts in training/ are thin wrappers over it."""
