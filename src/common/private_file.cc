#include "common/private_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/encoding.h"
#include "common/random.h"
#include "common/secure_zero.h"

namespace keystore {

namespace {

std::string errnoText() {
  return std::strerror(errno);
}

}  // namespace

Result<void> writePrivateFile(const std::string& path, std::string_view contents) {
  std::string temporary = path + ".tmp-" + hexEncode(randomBytes(4));
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fail(ErrorCode::kInternal, "cannot create " + temporary + ": " + errnoText());
  }
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      std::string message = "cannot write " + temporary + ": " + errnoText();
      ::close(fd);
      ::unlink(temporary.c_str());
      return fail(ErrorCode::kInternal, message);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    std::string message = "cannot flush " + temporary + ": " + errnoText();
    ::unlink(temporary.c_str());
    return fail(ErrorCode::kInternal, message);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    std::string message = "cannot rename " + temporary + " to " + path + ": " + errnoText();
    ::unlink(temporary.c_str());
    return fail(ErrorCode::kInternal, message);
  }
  return {};
}

Result<Secret> readPrivateFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return fail(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInvalidRequest,
                "cannot open " + path + ": " + errnoText());
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    std::string message = "cannot stat " + path + ": " + errnoText();
    ::close(fd);
    return fail(ErrorCode::kInvalidRequest, message);
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return fail(ErrorCode::kInvalidRequest, path + " is not a regular file");
  }
  if ((info.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(info.st_mode & 07777));
    return fail(ErrorCode::kInvalidRequest, path + " has mode " + mode +
                                                " and is readable by others; run 'chmod 600 " +
                                                path + "' and start again");
  }
  Secret contents;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      std::string message = "cannot read " + path + ": " + errnoText();
      ::close(fd);
      return fail(ErrorCode::kInvalidRequest, message);
    }
    if (n == 0) {
      break;
    }
    contents.revealMutable().append(buffer, static_cast<size_t>(n));
  }
  secureZero(buffer, sizeof(buffer));
  ::close(fd);
  return contents;
}

Result<void> ensurePrivateDirectory(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) {
    return fail(ErrorCode::kInternal, "cannot create directory " + path + ": " + error.message());
  }
  std::filesystem::permissions(path, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, error);
  if (error) {
    return fail(ErrorCode::kInternal, "cannot set mode 0700 on " + path + ": " + error.message());
  }
  return {};
}

}  // namespace keystore
