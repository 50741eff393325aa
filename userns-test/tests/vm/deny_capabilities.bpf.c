// SPDX-License-Identifier: GPL-2.0
// A model of Ubuntu 24.04's restriction of unprivileged user namespaces,
// as a BPF LSM program: credentials inside a user namespace whose owner
// (the process that created it) is not root hold no capability there. The
// creator keeps its rights while it creates the namespace: its
// credentials are still the parent namespace's then. Loaded by
// `loader.c` in the 6.1 VM of `tests/vm.rs`, and detached after.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/capable")
int BPF_PROG(userns_test_deny_capabilities, const struct cred *cred,
             struct user_namespace *ns, int cap, unsigned int opts, int ret)
{
	struct user_namespace *own;

	if (ret)
		return ret;
	own = BPF_CORE_READ(cred, user_ns);
	if (BPF_CORE_READ(own, level) > 0 && BPF_CORE_READ(own, owner.val) != 0)
		return -1; /* -EPERM */
	return 0;
}
