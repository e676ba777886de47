export * from './squad.js';
export * from './seqeval.js';
export * from './prf1.js';
export * from './pearson.js';
