/**
 * GGUF metadata values: the value types, and GgufArray, an array checked when the header is read
 * but decoded only when used (numeric ones as typed arrays over their file bytes).
 */
import { ChatGLMError } from '../errors.js';

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** A scalar: numbers for the 8/16/32-bit and float types, bigint for the 64-bit integers. */
export type GgufScalar = number | bigint | boolean | string;

/** Typed arrays whose elements are JS numbers: the 8/16/32-bit integer and float element types. */
export type GgufNumberArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

/**
 * How a numeric array is held: the typed array of the element type (UINT8 -> Uint8Array, INT32 ->
 * Int32Array, FLOAT32 -> Float32Array, FLOAT64 -> Float64Array, and so on), so a 4M-entry array
 * costs its file bytes and not a JS number or object per entry. BOOL is a Uint8Array of 0s and 1s
 * (the file's own bytes, checked when the header is read). UINT64/INT64 are BigUint64Array /
 * BigInt64Array, because their values need not fit a double.
 */
export type GgufNumericArray = GgufNumberArray | BigUint64Array | BigInt64Array;

/** The elements of an array: a typed array (numeric and bool), strings, or nested arrays. */
export type GgufArrayItems = GgufNumericArray | readonly string[] | readonly GgufArray[];

/**
 * A metadata array. Arrays read from a file keep their raw bytes (one copy, taken when the header
 * is read) and decode them on the first access to `items`, then keep the result: numeric arrays
 * become a typed array over those same bytes, string arrays are decoded to strings only then, so
 * a header with a large array nobody reads (merges, say) never turns it into JS strings.
 * Treat `items` as read-only: it is shared by every caller.
 */
export class GgufArray {
  private state: { items: GgufArrayItems } | { decode: () => GgufArrayItems };

  private constructor(
    /** Type of every element (ARRAY for nested arrays). */
    readonly itemType: GgufValueType,
    /** Number of elements (known without decoding). */
    readonly length: number,
    state: { items: GgufArrayItems } | { decode: () => GgufArrayItems },
  ) {
    this.state = state;
  }

  /** An array of values already in memory, held as `itemType` needs (see GgufNumericArray). */
  static of(itemType: GgufValueType, items: GgufArrayItems): GgufArray {
    const want = itemsMismatch(itemType, items);
    if (want !== undefined) {
      throw new ChatGLMError('BAD_ARGUMENT', `a GGUF array of ${GgufValueType[itemType] ?? `type ${itemType}`} must be given as ${want}`);
    }
    return new GgufArray(itemType, items.length, { items });
  }

  /** An array of `length` elements that `decode` produces on the first access to `items`. */
  static lazy(itemType: GgufValueType, length: number, decode: () => GgufArrayItems): GgufArray {
    return new GgufArray(itemType, length, { decode });
  }

  /** The elements, decoded on first access and cached. */
  get items(): GgufArrayItems {
    if ('items' in this.state) return this.state.items;
    const items = this.state.decode();
    // Dropping the decoder releases the raw bytes a string array no longer needs.
    this.state = { items };
    return items;
  }

  /** Whether `items` has been decoded yet. */
  get decoded(): boolean {
    return 'items' in this.state;
  }

  /** The strings of a STRING array; undefined for other element types. */
  strings(): readonly string[] | undefined {
    return this.itemType === GgufValueType.STRING ? (this.items as readonly string[]) : undefined;
  }

  /** The typed array of a numeric array (BOOL excluded); undefined for other element types. */
  numbers(): GgufNumericArray | undefined {
    return isNumericType(this.itemType) && this.itemType !== GgufValueType.BOOL ? (this.items as GgufNumericArray) : undefined;
  }

  /** The elements of an array of arrays; undefined for other element types. */
  arrays(): readonly GgufArray[] | undefined {
    return this.itemType === GgufValueType.ARRAY ? (this.items as readonly GgufArray[]) : undefined;
  }
}

function isNumericType(t: number): boolean {
  return (t >= GgufValueType.UINT8 && t <= GgufValueType.BOOL) || (t >= GgufValueType.UINT64 && t <= GgufValueType.FLOAT64);
}

/** What `items` must be for `itemType`, or undefined when it is that. */
function itemsMismatch(itemType: GgufValueType, items: GgufArrayItems): string | undefined {
  const typed = (ok: boolean, name: string): string | undefined => (ok ? undefined : `a ${name}`);
  switch (itemType) {
    case GgufValueType.UINT8:
      return typed(items instanceof Uint8Array, 'Uint8Array');
    case GgufValueType.BOOL:
      return items instanceof Uint8Array && items.every((b) => b <= 1) ? undefined : 'a Uint8Array of 0s and 1s';
    case GgufValueType.INT8:
      return typed(items instanceof Int8Array, 'Int8Array');
    case GgufValueType.UINT16:
      return typed(items instanceof Uint16Array, 'Uint16Array');
    case GgufValueType.INT16:
      return typed(items instanceof Int16Array, 'Int16Array');
    case GgufValueType.UINT32:
      return typed(items instanceof Uint32Array, 'Uint32Array');
    case GgufValueType.INT32:
      return typed(items instanceof Int32Array, 'Int32Array');
    case GgufValueType.FLOAT32:
      return typed(items instanceof Float32Array, 'Float32Array');
    case GgufValueType.FLOAT64:
      return typed(items instanceof Float64Array, 'Float64Array');
    case GgufValueType.UINT64:
      return typed(items instanceof BigUint64Array, 'BigUint64Array');
    case GgufValueType.INT64:
      return typed(items instanceof BigInt64Array, 'BigInt64Array');
    case GgufValueType.STRING:
      return Array.isArray(items) && items.every((x) => typeof x === 'string') ? undefined : 'an array of strings';
    case GgufValueType.ARRAY:
      return Array.isArray(items) && items.every((x) => x instanceof GgufArray) ? undefined : 'an array of GgufArray';
    default:
      return 'a known element type';
  }
}

export type GgufValue = GgufScalar | GgufArray;

export interface GgufMetadataEntry {
  type: GgufValueType;
  value: GgufValue;
}

