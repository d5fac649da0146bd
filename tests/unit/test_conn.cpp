#include <gtest/gtest.h>

#include <string>

#include "config/config.h"
#include "pg/conn.h"

using namespace pgfo;

TEST(Conn, EveryConnectionHasTcpUserTimeoutAndKeepalives) {
    Config cfg;
    cfg.connect_timeout = 2.5;
    cfg.command_timeout = 7.25;
    auto s = tcp_settings(cfg);
    auto get = [&](const std::string &k) {
        for (auto &[key, v] : s)
            if (key == k) return v;
        return std::string("(missing)");
    };
    EXPECT_EQ(get("connect_timeout"), "3");
    EXPECT_EQ(get("tcp_user_timeout"), "7250");
    EXPECT_EQ(get("keepalives"), "1");
    EXPECT_EQ(get("keepalives_idle"), "3");
    EXPECT_EQ(get("keepalives_interval"), "1");
    EXPECT_EQ(get("keepalives_count"), "3");
    cfg.connect_timeout = 30;
    s = tcp_settings(cfg);
    EXPECT_EQ(get("keepalives_idle"), "30");
    EXPECT_EQ(get("keepalives_interval"), "10");
}
