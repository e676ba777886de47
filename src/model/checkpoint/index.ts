// Checkpoint I/O: safetensors, PyTorch .bin (zip + pickle, no Python), Hugging Face folders.
export * from './tensor.js';
export { CheckpointFormatError, readSafetensors, writeSafetensors, inspectSafetensors } from './safetensors.js';
export type { SafetensorsFile } from './safetensors.js';
export { readTorchBin } from './torch-bin.js';
export type { TorchBinFile } from './torch-bin.js';
export { PickleError, PyTuple, unpickle } from './pickle.js';
export { ZipReader } from './zip.js';
export { loadCheckpoint, loadModelParams, matchParams, saveCheckpoint, TOKENIZER_FILES } from './hf-dir.js';
export type { CheckpointFormat, LoadedCheckpoint, MatchOptions, MatchResult, SaveExtra } from './hf-dir.js';
