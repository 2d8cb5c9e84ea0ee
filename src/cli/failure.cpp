#include "cli/failure.hpp"

#include <stdexcept>

namespace sessiond::cli {

void throw_exception_from_error(const Failure& f, const boost::source_location& /*loc*/) {
  throw std::logic_error("unchecked failure: " + f.message);
}

}  // namespace sessiond::cli
