/**
 * openModel / openCheckpoint for library users: model/open.ts takes the families a checkpoint may
 * belong to as a parameter (model/ never imports families/); these pass the registry's.
 */
import { FAMILIES } from '../families/registry.js';
import {
  openCheckpoint as openCheckpointOf,
  openModel as openModelOf,
  type CheckpointHandle,
  type OpenedModel,
  type OpenModelOptions,
} from '../model/open.js';

/** OpenModelOptions with `families` optional (default: every registered family). */
export type OpenModelWithFamilies = Omit<OpenModelOptions, 'families'> & Partial<Pick<OpenModelOptions, 'families'>>;

/** Opens and loads a model directory or .gguf file (see model/open.ts). */
export function openModel(modelPath: string, options: OpenModelWithFamilies = {}): Promise<OpenedModel> {
  return openModelOf(modelPath, { ...options, families: options.families ?? FAMILIES });
}

/** Opens a checkpoint without reading its weights (see model/open.ts). */
export function openCheckpoint(modelPath: string, options: Pick<OpenModelWithFamilies, 'families' | 'family' | 'ropeScaling'> = {}): Promise<CheckpointHandle> {
  return openCheckpointOf(modelPath, { ...options, families: options.families ?? FAMILIES });
}
