// The limits of the wire contract, each written once. The node's HTTP API, the leader's proposal
// path, the follower's peer-frame decoder and the lock state machine's defaults read them from
// here, and so does the booking API before it passes a caller's input on to the cluster: a value
// one side accepts is a value every other side accepts too.
//
// Plain constants, no imports: the pure lock state machine reads them as well.

/**
 * nodeIdPattern is the one rule for a node id, wherever one appears: SCTEC_NODE_ID and the peer
 * list, the admin API (membership and leadership transfer), membership entries in the Raft log,
 * and every id in a peer frame or handshake. An id is part of URLs, log lines and metric labels,
 * so it is kept short and plain.
 */
export const nodeIdPattern = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** nodeIdLengthMax is the longest id nodeIdPattern allows. */
export const nodeIdLengthMax = 32;
/** nodeIdRule says nodeIdPattern in words, for error messages. */
export const nodeIdRule = "a node id is 1 to 32 lower-case letters, digits and dashes, starting with a letter or digit";

/**
 * nameLengthMax bounds every name the lock cluster stores or looks up, in UTF-16 code units: a
 * resource, an owner, a key, a session's client id, a range's prefix and its `after` cursor.
 */
export const nameLengthMax = 256;
/** valueLengthMax bounds a stored value (a put's or an append's), in UTF-16 code units. */
export const valueLengthMax = 64 * 1024;
/** leasesPerCommandMax bounds the resources of one acquire, and the leases or guards of one renew, release or txn. */
export const leasesPerCommandMax = 64;
/** operationsPerTxnMax bounds the writes of one txn. */
export const operationsPerTxnMax = 64;
/** readsPerAcquireMax bounds the range reads an acquire may carry; readLimitMax bounds each one's keys. */
export const readsPerAcquireMax = 4;
export const readLimitMax = 100;
/** rangeLimitMax bounds the keys of one range page (GET /kv). */
export const rangeLimitMax = 1000;
/** chainNamePattern: a hash chain's name is part of its keys: 1 to 64 lower-case letters, digits and dashes. */
export const chainNamePattern = /^[a-z0-9-]{1,64}$/;

/**
 * requestIdPattern is what a caller's `x-request-id` must look like for a service to adopt it
 * (log it, pass it on, echo it back); anything else is replaced by a fresh id. It bounds what a
 * caller can make a service write into its logs and answers.
 */
export const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * credentialNamePattern: a credential's name, its handle in the admin API and the sctec CLI
 * (`sctec credential revoke scheduler`). Part of URLs and log lines, so short and plain.
 */
export const credentialNamePattern = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** credentialNameRule says credentialNamePattern in words, for error messages. */
export const credentialNameRule = "a credential name is 1 to 64 lower-case letters, digits and dashes, starting with a letter or digit";
/** tokenHashPattern: what the cluster stores of a token: its SHA-256, in lower-case hex. */
export const tokenHashPattern = /^[0-9a-f]{64}$/;
/** credentialsMax bounds the credentials the cluster keeps (each is a row of the replicated state and of every snapshot). */
export const credentialsMax = 1000;
