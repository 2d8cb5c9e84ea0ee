// sessionctl's command line (CLI11): parses the arguments, runs the command, prints a failure and
// turns it into the exit status (0 ok, 1 the server said no, 2 bad usage, 3 cannot reach the
// server).
#pragma once

namespace sessiond::cli {

int run(int argc, char** argv);

}  // namespace sessiond::cli
