/** The fuzz suite's hand assemblers (ZIP, torch pickles, byte buffers), shared with the hardening tests. */
export { Bytes, stateDictPickle, storedZip, torchZip, type ZipFile } from '../../tools/fuzz/craft.js';
