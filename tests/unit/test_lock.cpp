// The cluster lock's ownership checks: on hand-made stat results (any owner,
// any mode), and on real files and directories this user creates.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "core/error.h"
#include "core/lock.h"

namespace fs = std::filesystem;
using namespace pgfo;

namespace {

struct stat made(mode_t type_and_mode, uid_t uid) {
    struct stat st {};
    st.st_mode = type_and_mode;
    st.st_uid = uid;
    return st;
}

constexpr uid_t kMe = 1234, kOther = 4321;

class LockTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device rd;
        dir_ = fs::temp_directory_path() / ("pgfo-lock-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(dir_);
        ::chmod(dir_.c_str(), 0700);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    // The message of the Error FileLock throws for `path`, with its code.
    std::string refusal(const std::string &path, pgfo_status_t code = PGFO_ERR_LOCKED) {
        try {
            FileLock l(path, 0.05, 0.01);
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), code) << e.what();
            return e.what();
        }
        ADD_FAILURE() << "no error for " << path;
        return {};
    }
    fs::path dir_;
};

} // namespace

TEST(LockChecks, Directory) {
    EXPECT_EQ(lock_directory_problem("/d", made(S_IFDIR | 0700, kMe), kMe), "");
    EXPECT_EQ(lock_directory_problem("/d", made(S_IFDIR | 0755, kMe), kMe), "");
    EXPECT_EQ(lock_directory_problem("/d", made(S_IFDIR | 0755, 0), kMe), "") << "root's own directory";
    std::string m = lock_directory_problem("/d", made(S_IFDIR | 0700, kOther), kMe);
    EXPECT_NE(m.find("lock directory /d is owned by uid 4321"), std::string::npos) << m;
    m = lock_directory_problem("/tmp", made(S_IFDIR | 01777, 0), kMe);
    EXPECT_NE(m.find("lock directory /tmp is writable by other users (mode 1777)"), std::string::npos) << m;
    m = lock_directory_problem("/d", made(S_IFDIR | 0770, kMe), kMe);
    EXPECT_NE(m.find("writable by other users (mode 0770)"), std::string::npos) << m;
    EXPECT_NE(lock_directory_problem("/d", made(S_IFREG | 0700, kMe), kMe).find("is not a directory"),
              std::string::npos);
}

TEST(LockChecks, File) {
    EXPECT_EQ(lock_file_problem("/d/l", made(S_IFREG | 0600, kMe), kMe), "");
    EXPECT_EQ(lock_file_problem("/d/l", made(S_IFREG | 0400, kMe), kMe), "");
    std::string m = lock_file_problem("/d/l", made(S_IFREG | 0600, kOther), kMe);
    EXPECT_NE(m.find("lock file /d/l is owned by uid 4321, not by uid 1234"), std::string::npos) << m;
    m = lock_file_problem("/d/l", made(S_IFREG | 0600, 0), kMe);
    EXPECT_NE(m.find("is owned by root (uid 0)"), std::string::npos) << m;
    for (mode_t mode : {0640, 0604, 0620, 0602, 0644, 0666}) {
        m = lock_file_problem("/d/l", made(S_IFREG | mode, kMe), kMe);
        EXPECT_NE(m.find("is open to other users"), std::string::npos) << mode << ": " << m;
    }
    EXPECT_NE(lock_file_problem("/d/l", made(S_IFLNK | 0777, kMe), kMe).find("not a regular file"), std::string::npos);
    EXPECT_NE(lock_file_problem("/d/l", made(S_IFIFO | 0600, kMe), kMe).find("not a regular file"), std::string::npos);
}

TEST_F(LockTest, CreatesTheDirectoryAndTheFilePrivate) {
    const std::string d = (dir_ / "spool").string(), f = d + "/main.lock";
    {
        FileLock l(f, 1, 0.01);
        struct stat st {};
        ASSERT_EQ(::stat(d.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0700u);
        ASSERT_EQ(::stat(f.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0600u);
        EXPECT_EQ(st.st_uid, ::geteuid());
        // held: a second lock waits, then names the holder
        std::string m = refusal(f);
        EXPECT_NE(m.find("another pgfailover run (pid " + std::to_string(::getpid()) + ") holds " + f),
                  std::string::npos) << m;
    }
    FileLock again(f, 1, 0.01); // released with the first
}

TEST_F(LockTest, RefusesFilesAndDirectoriesOthersCanUse) {
    const std::string f = (dir_ / "open.lock").string();
    std::ofstream(f) << "";
    ::chmod(f.c_str(), 0644);
    std::string m = refusal(f);
    EXPECT_NE(m.find("lock file " + f + " is open to other users (mode 0644)"), std::string::npos) << m;

    const std::string shared = (dir_ / "shared").string();
    fs::create_directory(shared);
    ::chmod(shared.c_str(), 01777);
    m = refusal(shared + "/x.lock");
    EXPECT_NE(m.find("lock directory " + shared + " is writable by other users (mode 1777)"), std::string::npos) << m;
    EXPECT_FALSE(fs::exists(shared + "/x.lock"));

    const std::string link = (dir_ / "link.lock").string();
    fs::create_symlink(f, link);
    m = refusal(link);
    EXPECT_NE(m.find("is not a regular file"), std::string::npos) << m;
}

TEST_F(LockTest, UncreatableDirectoryIsAnExecError) {
    const std::string blocker = (dir_ / "a-file").string();
    std::ofstream(blocker) << "x";
    std::string m = refusal(blocker + "/sub/x.lock", PGFO_ERR_EXEC);
    EXPECT_NE(m.find("cannot create lock directory " + blocker + "/sub"), std::string::npos) << m;
    EXPECT_NE(m.find("or set [general] lock_file"), std::string::npos) << m;
}
