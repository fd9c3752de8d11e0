/*
 * hello-c-wagi is the example C function for wisp's "wagi" ABI: a WASI
 * command that reads QUERY_STRING and prints a CGI response.
 *
 *   clang --target=wasm32-wasi -O2 -Wl,--strip-debug -o hello-c-wagi.wasm hello.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
	const char *query = getenv("QUERY_STRING");
	const char *revision = getenv("K_REVISION");
	char name[128] = "world";

	/* Take name=... from the query string, undecoded, up to the next '&'. */
	if (query != NULL) {
		const char *p = query;
		while (p != NULL && *p != '\0') {
			if (strncmp(p, "name=", 5) == 0 && p[5] != '\0' && p[5] != '&') {
				size_t n = strcspn(p + 5, "&");
				if (n >= sizeof name) {
					n = sizeof name - 1;
				}
				memcpy(name, p + 5, n);
				name[n] = '\0';
				break;
			}
			p = strchr(p, '&');
			if (p != NULL) {
				p++;
			}
		}
	}
	printf("Content-Type: text/plain; charset=utf-8\n\n");
	printf("Hello, %s! (revision %s)\n", name, revision != NULL ? revision : "");
	return 0;
}
