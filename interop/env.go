package interop

// Where the cases run. The hosts' kernel has XFRM but no ESP transforms, so
// strongSwan's only ESP there is kernel-libipsec, which implements tunnel
// mode alone (charon negotiates transport mode and then fails to install it:
// "IPsec SA: unsupported mode"). Transport-mode cases therefore run in
// Cygnet's QEMU test VM (vm/), whose kernel has ESP, against charon with
// kernel-netlink; every other case runs on the host, in parallel and fast.

// Env is where a case runs and which IPsec backend strongSwan uses there.
type Env struct {
	Name    string // EnvHost or EnvVM
	Backend string // strongSwan's IPsec backend: BackendLibipsec or BackendNetlink
}

const (
	EnvHost = "host"
	EnvVM   = "VM"

	// BackendLibipsec is ESP in charon's own process over a TUN device.
	// It always UDP-encapsulates: it fakes a NAT (RFC 3948), so IKE moves
	// to port 4500 after IKE_SA_INIT.
	BackendLibipsec = "kernel-libipsec"
	// BackendNetlink is the kernel's ESP, programmed over XFRM netlink:
	// no NAT here, so IKE stays on port 500 and ESP is IP protocol 50.
	BackendNetlink = "kernel-netlink"
)

var (
	HostEnv = Env{Name: EnvHost, Backend: BackendLibipsec}
	VMEnv   = Env{Name: EnvVM, Backend: BackendNetlink}
)

// EnvOf returns where case c runs: transport mode needs strongSwan with the
// kernel's ESP, which only the VM has.
func EnvOf(c Case) Env {
	if c.Mode == ModeTransport {
		return VMEnv
	}
	return HostEnv
}

// FakesNAT reports whether strongSwan's backend in e fakes a NAT, so that
// IKE floats to port 4500 and every CHILD_SA is UDP-encapsulated.
func (e Env) FakesNAT() bool { return e.Backend == BackendLibipsec }

// String is the matrix's "where" cell: "host" or "VM".
func (e Env) String() string {
	if e.Name == "" {
		return "-"
	}
	return e.Name
}

// CasesIn returns the cases of cases that run in env.
func CasesIn(env Env, cases []Case) []Case {
	var in []Case
	for _, c := range cases {
		if EnvOf(c) == env {
			in = append(in, c)
		}
	}
	return in
}
