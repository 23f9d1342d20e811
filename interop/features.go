package interop

// Features some steps need that are not in every tree yet. A step that needs
// a missing feature is recorded as pending (never as a pass), but only when
// the failure looks exactly like the feature's absence — the daemon
// refusing `dataplane: userspace` as not available, a CHILD_SA rekey
// answered with TEMPORARY_FAILURE or never started — and only while the
// feature is not marked landed here. Once it is, the same symptom is a
// failure. When a pending step passes, the suite says so: mark the feature
// landed then.
const (
	// FeatureDataplane: `cygnet daemon` with `dataplane: userspace` moves
	// ESP (needed by the ping step). Until then the suite runs the daemon
	// with `dataplane: none` (IKE only).
	FeatureDataplane = "userspace data plane"
	// FeatureChildRekey: CHILD_SA rekeying (RFC 7296 1.3.3) in the engine,
	// both as initiator (rekey_time) and as responder.
	FeatureChildRekey = "CHILD_SA rekeying"
)

// Landed lists the features that are in the tree: their symptoms are
// failures, not pending steps.
var Landed = map[string]bool{
	FeatureDataplane:  true, // 55e2281 daemon: dataplane userspace wired in
	FeatureChildRekey: true, // 2ff90fe sa: SA lifecycle (CHILD_SA and IKE SA rekeying)
}
