// torii-runner-host: the child process that runs one model version's
// instances for `isolation: "process"`. Started by torii-server only; see
// server/isolation/runner_host.h and docs/reliability.md.
#include "server/isolation/runner_host.h"

int main(int argc, char** argv) { return torii::isolation::RunnerHostMain(argc, argv); }
