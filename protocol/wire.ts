// What every answer type of the contract is wrapped in.

/**
 * Wire is a decoded answer as readers get it: read-only all the way down. A node may build an
 * answer from its own read-only state, and a reader has no business changing what a node said.
 */
export type Wire<T> = T extends readonly (infer Item)[]
  ? readonly Wire<Item>[]
  : T extends object
    ? { readonly [Key in keyof T]: Wire<T[Key]> }
    : T;
