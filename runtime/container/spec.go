package container

import (
	goruntime "runtime"
)

// The part of the OCI runtime specification (config.json, version 1.0.2)
// that wisp writes. It is written by hand rather than imported from
// github.com/opencontainers/runtime-spec to keep the module graph as it
// is; the field names and JSON tags are the specification's.

type ociSpec struct {
	Version  string     `json:"ociVersion"`
	Process  ociProcess `json:"process"`
	Root     ociRoot    `json:"root"`
	Hostname string     `json:"hostname,omitempty"`
	Mounts   []ociMount `json:"mounts"`
	Linux    ociLinux   `json:"linux"`
}

type ociProcess struct {
	Terminal        bool        `json:"terminal"`
	User            ociUser     `json:"user"`
	Args            []string    `json:"args"`
	Env             []string    `json:"env"`
	Cwd             string      `json:"cwd"`
	Capabilities    ociCaps     `json:"capabilities"`
	Rlimits         []ociRlimit `json:"rlimits,omitempty"`
	NoNewPrivileges bool        `json:"noNewPrivileges"`
}

type ociUser struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids,omitempty"`
}

type ociCaps struct {
	Bounding    []string `json:"bounding"`
	Effective   []string `json:"effective"`
	Permitted   []string `json:"permitted"`
	Inheritable []string `json:"inheritable"`
	Ambient     []string `json:"ambient"`
}

type ociRlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

type ociRoot struct {
	Path     string `json:"path"`
	Readonly bool   `json:"readonly"`
}

type ociMount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

type ociLinux struct {
	Namespaces    []ociNamespace `json:"namespaces"`
	Resources     ociResources   `json:"resources"`
	CgroupsPath   string         `json:"cgroupsPath,omitempty"`
	MaskedPaths   []string       `json:"maskedPaths,omitempty"`
	ReadonlyPaths []string       `json:"readonlyPaths,omitempty"`
	Seccomp       *ociSeccomp    `json:"seccomp,omitempty"`
}

type ociNamespace struct {
	Type string `json:"type"`
}

type ociResources struct {
	Devices []ociDeviceRule `json:"devices"`
	Memory  *ociMemory      `json:"memory,omitempty"`
	Pids    *ociPids        `json:"pids,omitempty"`
}

type ociDeviceRule struct {
	Allow  bool   `json:"allow"`
	Access string `json:"access"`
}

type ociMemory struct {
	Limit *int64 `json:"limit,omitempty"`
	Swap  *int64 `json:"swap,omitempty"`
}

type ociPids struct {
	Limit int64 `json:"limit"`
}

type ociSeccomp struct {
	DefaultAction string           `json:"defaultAction"`
	Architectures []string         `json:"architectures,omitempty"`
	Syscalls      []ociSyscallRule `json:"syscalls"`
}

type ociSyscallRule struct {
	Names    []string     `json:"names"`
	Action   string       `json:"action"`
	ErrnoRet *uint        `json:"errnoRet,omitempty"`
	Args     []ociSeccArg `json:"args,omitempty"`
}

type ociSeccArg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo"`
	Op       string `json:"op"`
}

// defaultCaps is Docker's default capability set less CAP_NET_RAW,
// CAP_MKNOD and CAP_NET_BIND_SERVICE: containers share the node's
// network, where raw sockets could watch or forge its traffic and a
// privileged port could squat one of the node's services. See
// RATIONALE.md.
var defaultCaps = []string{
	"CAP_AUDIT_WRITE",
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETFCAP",
	"CAP_SETGID",
	"CAP_SETPCAP",
	"CAP_SETUID",
	"CAP_SYS_CHROOT",
}

// maskedPaths and readonlyPaths are runc's and Docker's defaults.
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
	}
	readonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// deniedSyscalls fail with EPERM in every container. The list is the
// part of Docker's default profile that matters once capabilities are
// dropped: namespaces and the kernel's keyring, BPF, perf and
// userfaultfd are reachable without any capability and are where most
// container escapes started. The rest need capabilities that containers
// do not have; they are listed anyway, as Docker does.
var deniedSyscalls = []string{
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
	"get_kernel_syms", "init_module", "ioperm", "iopl", "kexec_file_load", "kexec_load",
	"keyctl", "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at",
	"nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open", "pivot_root",
	"query_module", "quotactl", "quotactl_fd", "reboot", "request_key", "setns",
	"settimeofday", "stime", "swapoff", "swapon", "_sysctl", "sysfs", "umount", "umount2",
	"unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
}

// cloneNamespaceFlags are clone(2)'s flags that create namespaces:
// CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
// CLONE_NEWUSER, CLONE_NEWPID and CLONE_NEWNET.
var cloneNamespaceFlags = []uint64{0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000}

// seccompProfile allows every system call but deniedSyscalls, a clone
// that creates a namespace, and clone3, whose flags a filter cannot read:
// it fails with ENOSYS so that C libraries fall back to clone, as under
// Docker's profile.
func seccompProfile() *ociSeccomp {
	eperm, enosys := uint(1), uint(38)
	s := &ociSeccomp{
		DefaultAction: "SCMP_ACT_ALLOW",
		Architectures: seccompArchitectures(),
		Syscalls: []ociSyscallRule{
			{Names: deniedSyscalls, Action: "SCMP_ACT_ERRNO", ErrnoRet: &eperm},
			{Names: []string{"clone3"}, Action: "SCMP_ACT_ERRNO", ErrnoRet: &enosys},
		},
	}
	for _, f := range cloneNamespaceFlags {
		s.Syscalls = append(s.Syscalls, ociSyscallRule{
			Names:    []string{"clone"},
			Action:   "SCMP_ACT_ERRNO",
			ErrnoRet: &eperm,
			Args:     []ociSeccArg{{Index: cloneFlagsArg(), Value: f, ValueTwo: f, Op: "SCMP_CMP_MASKED_EQ"}},
		})
	}
	return s
}

// seccompArchitectures are the ABIs the filter covers: the node's and
// the 32-bit ones its CPU can run, which would otherwise bypass it.
func seccompArchitectures() []string {
	switch goruntime.GOARCH {
	case "amd64":
		return []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}
	case "arm64":
		return []string{"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}
	}
	return nil // the native one only
}

// cloneFlagsArg is the index of clone(2)'s flags argument: the second
// on s390x, the first elsewhere.
func cloneFlagsArg() uint {
	if goruntime.GOARCH == "s390x" {
		return 1
	}
	return 0
}
