// Reading the backend list from an existing pgpool.conf, so that operators
// define their nodes once.
#pragma once

#include <map>
#include <string>

namespace pgfo {

struct PgpoolBackend {
    int id = -1;
    std::string host;
    int port = 0;                 // 0 = not set
    std::string data_directory;
    std::string application_name;
    int line = 0;                 // line of backend_hostnameN
};

// backend_hostnameN, backend_portN, backend_data_directoryN,
// backend_application_nameN. Values may be quoted with single quotes ('' or
// \' inside); '#' starts a comment outside quotes. Throws
// pgfo::Error(PGFO_ERR_CONFIG, "pgpool.conf:LINE: ...") on a malformed line of
// one of these keys or an unreadable file; other keys are ignored.
std::map<int, PgpoolBackend> read_pgpool_backends(const std::string &path);

} // namespace pgfo
