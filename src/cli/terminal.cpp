#include "cli/terminal.hpp"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <iostream>

namespace sessiond::cli {

namespace {

// The terminal settings to restore if a signal ends the process while echo is off.
termios g_saved_termios{};

extern "C" void restore_terminal_and_reraise(int signal) {
  ::tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

std::string trim_line_end(std::string line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  return line;
}

Outcome<std::string> next_line(std::string_view what) {
  std::string line;
  if (!std::getline(std::cin, line)) {
    return Failure::usage(std::string(what) + " was not given: standard input ended (pipe it in, " +
                          "one line each, or run in a terminal)");
  }
  line = trim_line_end(std::move(line));
  if (line.empty()) return Failure::usage(std::string(what) + " is empty");
  return line;
}

}  // namespace

bool stdin_is_terminal() { return ::isatty(STDIN_FILENO) == 1; }

Outcome<std::string> read_secret(std::string_view prompt, std::string_view what) {
  if (!stdin_is_terminal()) return next_line(what);
  termios saved{};
  if (::tcgetattr(STDIN_FILENO, &saved) != 0) {
    std::cerr << prompt << std::flush;
    return next_line(what);
  }
  g_saved_termios = saved;
  termios quiet = saved;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;  // the Enter key still moves to the next line
  const auto old_int = std::signal(SIGINT, restore_terminal_and_reraise);
  const auto old_term = std::signal(SIGTERM, restore_terminal_and_reraise);
  const auto old_hup = std::signal(SIGHUP, restore_terminal_and_reraise);
  // Echo goes off before the prompt appears: whatever is typed after it is never shown.
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  std::cerr << prompt << std::flush;
  auto line = next_line(what);
  ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  std::signal(SIGHUP, old_hup);
  return line;
}

Outcome<std::string> read_line(std::string_view prompt, std::string_view what) {
  if (stdin_is_terminal()) std::cerr << prompt << std::flush;
  return next_line(what);
}

bool confirm(std::string_view question) {
  std::cerr << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  answer = trim_line_end(std::move(answer));
  std::transform(answer.begin(), answer.end(), answer.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return answer == "y" || answer == "yes";
}

}  // namespace sessiond::cli
