// Package interop is Cygnet's interoperability suite against strongSwan
// (issue 7): a table-driven matrix of cases, each run between `cygnet
// daemon` and strongSwan's charon (with kernel-libipsec) in network
// namespaces, with wire conformance checks of every frame Cygnet sends, and
// recorded transcripts of exchanges with strongSwan that unit tests replay
// without strongSwan. Only tests use it; docs/interop.md is its report.
//
//	go test ./interop/                     # the matrix (root; skips without, fails under CYGNET_STRICT=1) and the replays
//	go test ./interop/ -run Matrix -v      # print the matrix
//	go test ./interop/ -update             # also rewrite docs/interop.md and re-record testdata/
//
// The cases come from Generate, a pairwise-covering set over Dimensions;
// Verdict and Check are the checker that turns step outcomes into the
// matrix's results.
package interop
