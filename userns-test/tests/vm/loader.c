/* Part of the 6.1 VM hosts of tests/vm.rs. */
/* Loads a BPF object, attaches its programs and pins each link under a
 * directory of bpffs, then exits: the links stay attached until the pins
 * are removed. */
#include <bpf/libbpf.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	char path[4096];
	if (argc != 3) {
		fprintf(stderr, "usage: %s OBJECT PIN_DIR\n", argv[0]);
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "cannot load %s\n", argv[1]);
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		struct bpf_link *link = bpf_program__attach(prog);
		snprintf(path, sizeof path, "%s/%s", argv[2], bpf_program__name(prog));
		if (!link || bpf_link__pin(link, path)) {
			fprintf(stderr, "cannot attach and pin %s\n", bpf_program__name(prog));
			return 1;
		}
	}
	return 0;
}
