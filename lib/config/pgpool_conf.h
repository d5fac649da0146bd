// Reading the backend list from an existing pgpool.conf, so that operators
// define their nodes once.
#pragma once

#include <map>
#include <string>
#include <vector>

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

struct PgpoolSetting {
    std::string value; // unquoted
    int line = 0;
};

// The settings named in `keys` (lower case, e.g. "failover_command"), same
// syntax and errors as above; a key absent from the file is absent from the map.
std::map<std::string, PgpoolSetting> read_pgpool_settings(const std::string &path,
                                                          const std::vector<std::string> &keys);

} // namespace pgfo
