// What sessionctl asks the person at the keyboard: secrets read without echo from a terminal, or
// one line of standard input each when it is not a terminal (scripts pipe passwords in). Prompts
// go to standard error, so standard output stays the command's output.
#pragma once

#include <string>
#include <string_view>

#include "cli/failure.hpp"

namespace sessiond::cli {

bool stdin_is_terminal();

// A secret (a password): from a terminal with echo off (restored on Ctrl-C too); else the next
// line of standard input. Failure (usage) when input ends first or the line is empty; `what`
// names the secret in that message ("the password").
Outcome<std::string> read_secret(std::string_view prompt, std::string_view what);

// A line that may be seen (a one-time code), under the same rules.
Outcome<std::string> read_line(std::string_view prompt, std::string_view what);

// Asks `question` followed by " [y/N] " and reads the answer: true only for "y" or "yes".
bool confirm(std::string_view question);

}  // namespace sessiond::cli
