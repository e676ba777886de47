// BERT WordPiece tokenizer (HF BertTokenizerFast-compatible ids) and WordPiece vocab training.
export { type TokenizerConfig, DEFAULT_TOKENIZER_CONFIG, resolveConfig, configFromHfJson, configToHfJson } from './config.js';
export { WordPieceTokenizer, readVocabFile, readTokenizerJson, concatIds, type EncodedBatch } from './wordpiece.js';
export { trainWordPieceVocab, type TrainVocabOptions, type TrainVocabInput, SPECIAL_TOKENS } from './train.js';
export { learnWordPiece, type LearnedWordPiece } from './wordpiece-trainer.js';
