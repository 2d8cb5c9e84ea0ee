// How a sessionctl command fails: the exit status (SPEC §9), and what the server answered, if it
// answered. Every fallible call of this layer returns Outcome<T>.
#pragma once

#include <boost/system/result.hpp>
#include <string>
#include <utility>

namespace sessiond::cli {

// The process exit status.
enum class Exit {
  ok = 0,
  refused = 1,      // the server said no (or there is no session to use)
  usage = 2,        // bad usage: flags, arguments, local files
  unreachable = 3,  // the server cannot be reached, or cannot serve right now
};

struct Failure {
  Exit exit = Exit::refused;
  // One or two sentences for a person: what happened, then what to do next. Never a token.
  std::string message;
  // When the server answered with a problem: its HTTP status, `code` and `reason` (SPEC §5).
  int status = 0;
  std::string code;
  std::string reason;
  std::string detail;

  static Failure usage(std::string message) { return with(Exit::usage, std::move(message)); }
  static Failure refused(std::string message) { return with(Exit::refused, std::move(message)); }
  static Failure unreachable(std::string message) {
    return with(Exit::unreachable, std::move(message));
  }
  static Failure with(Exit exit, std::string message) {
    Failure f;
    f.exit = exit;
    f.message = std::move(message);
    return f;
  }
};

template <class T>
using Outcome = boost::system::result<T, Failure>;

// Lets Outcome<T>::value() throw when misused (a bug, never an expected failure).
[[noreturn]] void throw_exception_from_error(const Failure& f, const boost::source_location& loc);

}  // namespace sessiond::cli
