package keys

import "github.com/cygnet-ipsec/cygnet/internal/ike/algs"

// keyPadIKEv2 is the PSK key pad of RFC 7296 2.15: the 17 ASCII octets
// "Key Pad for IKEv2", without a terminating NUL.
const keyPadIKEv2 = "Key Pad for IKEv2"

// SignedOctets returns the octets that an AUTH payload covers (RFC 7296
// 2.15):
//
//	InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//	ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//	MACedIDForX = prf(SK_px, RestOfIDxPayload)
//
// realMessage is the sender's whole IKE_SA_INIT message as sent (header
// included), peerNonce the Nonce Data of the other side's IKE_SA_INIT
// message, skp the sender's SK_pi or SK_pr, and idBody the sender's ID
// payload body without its generic header (ID Type | RESERVED | data).
//
// intAuth is RFC 9242's IntAuth (3.3.2), appended when the IKE SA used
// IKE_INTERMEDIATE exchanges; leave it out otherwise.
func SignedOctets(prf *algs.PRF, realMessage, peerNonce, skp, idBody []byte, intAuth ...[]byte) []byte {
	mac := prf.Sum(skp, idBody)
	n := len(realMessage) + len(peerNonce) + len(mac)
	for _, b := range intAuth {
		n += len(b)
	}
	out := make([]byte, 0, n)
	out = append(out, realMessage...)
	out = append(out, peerNonce...)
	out = append(out, mac...)
	for _, b := range intAuth {
		out = append(out, b...)
	}
	return out
}

// PSKAuth computes the Authentication Data of a shared-key AUTH payload (RFC
// 7296 2.15, Auth Method 2):
//
//	AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//
// Callers compare a received value with hmac.Equal. The same computation
// yields EAP's AUTH with the MSK as the shared secret (RFC 7296 2.16).
func PSKAuth(prf *algs.PRF, psk, signedOctets []byte) []byte {
	key := prf.Sum(psk, []byte(keyPadIKEv2))
	out := prf.Sum(key, signedOctets)
	clear(key)
	return out
}
