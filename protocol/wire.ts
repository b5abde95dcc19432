// What every answer type of the contract is wrapped in.

/**
 * Wire is a request or answer as the contract's types show it: read-only all the way down. A node
 * may build an answer from its own read-only state, a sender may build a request from read-only
 * data, and a reader has no business changing what the other side said.
 */
export type Wire<T> = T extends readonly (infer Item)[]
  ? readonly Wire<Item>[]
  : T extends object
    ? { readonly [Key in keyof T]: Wire<T[Key]> }
    : T;
