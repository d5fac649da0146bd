#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "steps/fence.h"

using namespace pgfo;

TEST(Fence, PlaceholdersAreReplacedInEveryArgumentNeverSplit) {
    Config cfg;
    cfg.fence_command = {"/usr/local/bin/fence", "--node=%d", "%h:%p", "%D", "%r", "100%%", "%%d"};
    Node n;
    n.id = 3;
    n.host = "db3.example";
    n.port = 5433;
    n.data_directory = "/srv/pg data";
    const std::string reason = "the old primary's host cannot be reached (ssh: timed out); $(rm -rf /)";
    EXPECT_EQ(fence_argv(cfg, n, reason),
              (std::vector<std::string>{"/usr/local/bin/fence", "--node=3", "db3.example:5433", "/srv/pg data",
                                        reason, "100%", "%d"}));
}
