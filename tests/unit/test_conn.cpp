#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

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

// Every query names its deadline: the query API has no default timeout, so a
// call without one does not compile. These detect the calls by expression
// SFINAE; a default argument put back makes them callable and the test fail.
namespace {
template <class, class = void> struct QueryWithoutDeadline : std::false_type {};
template <class T>
struct QueryWithoutDeadline<T, std::void_t<decltype(std::declval<T &>().query(std::string()))>> : std::true_type {};
template <class, class = void> struct QueryWithParamsOnly : std::false_type {};
template <class T>
struct QueryWithParamsOnly<T, std::void_t<decltype(std::declval<T &>().query(std::string(), std::vector<std::string>()))>>
    : std::true_type {};
template <class, class = void> struct ScalarWithoutDeadline : std::false_type {};
template <class T>
struct ScalarWithoutDeadline<T, std::void_t<decltype(std::declval<T &>().scalar(std::string()))>> : std::true_type {};
template <class, class = void> struct ScalarWithParamsOnly : std::false_type {};
template <class T>
struct ScalarWithParamsOnly<T, std::void_t<decltype(std::declval<T &>().scalar(std::string(), std::vector<std::string>()))>>
    : std::true_type {};
template <class, class = void> struct QueryWithDeadline : std::false_type {};
template <class T>
struct QueryWithDeadline<T, std::void_t<decltype(std::declval<T &>().query(std::string(), std::vector<std::string>(), 1.0))>>
    : std::true_type {};
} // namespace

TEST(Conn, AQueryWithoutAnExplicitDeadlineDoesNotCompile) {
    EXPECT_FALSE(QueryWithoutDeadline<PgConn>::value);
    EXPECT_FALSE(QueryWithParamsOnly<PgConn>::value);
    EXPECT_FALSE(ScalarWithoutDeadline<PgConn>::value);
    EXPECT_FALSE(ScalarWithParamsOnly<PgConn>::value);
    EXPECT_TRUE(QueryWithDeadline<PgConn>::value); // the detection itself works
}
