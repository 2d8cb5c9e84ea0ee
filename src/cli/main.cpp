// sessionctl: the command-line client of sessiond, for users and admins (SPEC §9).
#include "cli/app.hpp"

int main(int argc, char** argv) { return sessiond::cli::run(argc, argv); }
