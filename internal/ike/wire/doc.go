// Package wire is the IKEv2 wire format: the IKE header, the payloads and
// whole messages of RFC 7296 section 3, plus the Encrypted Fragment payload of
// RFC 7383, parsed with cryptobyte.String and built with cryptobyte.Builder.
//
// Parsing is strict about structure and lenient about meaning. Every length is
// checked before it is used, and a malformed message is reported as an *Error
// that names the notify RFC 7296 prescribes as the answer (INVALID_SYNTAX,
// UNSUPPORTED_CRITICAL_PAYLOAD, INVALID_MAJOR_VERSION). Values this package
// does not interpret (unknown transform IDs, notify types, exchange types) are
// kept so that the state machine can apply the RFC's rules for them.
//
// RESERVED fields are ignored on receipt and sent as zero (RFC 7296 2.5); so
// are the header's X and V flags and the critical bit of payloads we
// understand. A message that parses therefore marshals to an equal Message,
// though not always to the same octets: Message.Raw keeps the octets received,
// which AUTH (RFC 7296 2.15) and the SK integrity check need verbatim.
//
// The Encrypted (SK) payload is handled in two steps: Parse leaves it as an
// *Encrypted holding IV, ciphertext and ICV; the keys package decrypts it and
// hands the plaintext to ParsePayloads. In the other direction MarshalPayloads
// gives the plaintext chain that goes inside SK.
package wire
