#include "vault/master_key.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include "common/encoding.h"
#include "common/hash.h"
#include "common/private_file.h"
#include "common/random.h"
#include "common/secure_zero.h"

namespace keystore::vault {

namespace {

constexpr size_t kMasterKeySize = 32;
constexpr std::string_view kKeyFileName = "master.key";
constexpr std::string_view kPreviousKeyFileName = "master.key.previous";
constexpr std::string_view kGenerateHint = "generate one with 'openssl rand -hex 32'";

// Copies decoded key bytes into a Secret and wipes the decoder's buffer, which would otherwise
// keep the key in freed memory.
Secret takeSecret(std::optional<std::string>& decoded) {
  Secret secret(*decoded);
  secureZero(decoded->data(), decoded->capacity());
  decoded.reset();
  return secret;
}

bool isHex(std::string_view text) {
  return text.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

std::string_view trimWhitespace(std::string_view text) {
  constexpr std::string_view kWhitespace = " \t\r\n\v\f";
  size_t first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) {
    return {};
  }
  size_t last = text.find_last_not_of(kWhitespace);
  return text.substr(first, last - first + 1);
}

std::string masterKeyId(const Secret& key) {
  return "mk_" + sha256Hex(key.reveal()).substr(0, 16);
}

Result<MasterKey> makeMasterKey(Secret key, std::string source) {
  std::string id = masterKeyId(key);
  return MasterKey{std::move(key), std::move(id), std::move(source)};
}

Result<MasterKey> keyFromEnvironment(const Secret& env_value) {
  Result<Secret> key = parseMasterKeyText(env_value.reveal());
  if (!key) {
    return fail(key.error().code, "KEYSTORE_MASTER_KEY is invalid: " + key.error().message);
  }
  return makeMasterKey(std::move(*key), "environment");
}

// Reads and parses a key file; kNotFound passes through so the caller can generate one.
Result<MasterKey> keyFromFile(const std::string& path, std::string source) {
  Result<Secret> text = readPrivateFile(path);
  if (!text) {
    return fail(text.error().code, "cannot read the master key file: " + text.error().message);
  }
  Result<Secret> key = parseMasterKeyText(text->reveal());
  if (!key) {
    return fail(key.error().code,
                "the master key file " + path + " is invalid: " + key.error().message);
  }
  return makeMasterKey(std::move(*key), std::move(source));
}

Secret keyFileText(const Secret& key) {
  Secret hex(hexEncode(key.reveal()));
  Secret file_text;
  file_text.revealMutable().reserve(hex.size() + 1);
  file_text.revealMutable().append(hex.reveal());
  file_text.revealMutable().push_back('\n');
  return file_text;
}

// Writes a new key to a staging file and hard-links it to `path`. Unlike rename, link never
// replaces an existing file, so when two processes start on a fresh data directory at once,
// one key wins and the loser loads it instead of overwriting it.
Result<MasterKey> generateKeyFile(const std::string& path) {
  Secret key(randomBytes(kMasterKeySize));
  Secret file_text = keyFileText(key);

  std::string staging = path + ".new-" + hexEncode(randomBytes(6));
  if (Result<void> written = writePrivateFile(staging, file_text.reveal()); !written) {
    return fail(written.error().code,
                "cannot write a new master key file: " + written.error().message);
  }
  int link_result = ::link(staging.c_str(), path.c_str());
  int link_errno = errno;
  ::unlink(staging.c_str());

  if (link_result != 0 && link_errno == EEXIST) {
    return keyFromFile(path, "file " + path);
  }
  if (link_result != 0) {
    return fail(ErrorCode::kInternal,
                "cannot create the master key file " + path + ": " + std::strerror(link_errno));
  }
  return makeMasterKey(std::move(key), "generated " + path);
}

}  // namespace

Result<Secret> parseMasterKeyText(std::string_view text) {
  std::string_view trimmed = trimWhitespace(text);
  auto invalid = [](std::string reason) {
    return fail(ErrorCode::kInvalidRequest, reason + "; " + std::string(kGenerateHint));
  };
  if (trimmed.empty()) {
    return invalid("the master key is empty");
  }

  if (isHex(trimmed) || trimmed.size() == 2 * kMasterKeySize) {
    if (trimmed.size() != 2 * kMasterKeySize) {
      return invalid("the master key has " + std::to_string(trimmed.size()) +
                     " hex digits, but it must have 64 (32 bytes)");
    }
    std::optional<std::string> decoded = hexDecode(trimmed);
    if (!decoded) {
      return invalid("the master key has 64 characters but not all are hex digits");
    }
    return takeSecret(decoded);
  }

  std::optional<std::string> decoded =
      trimmed.size() % 4 == 0 ? base64Decode(trimmed) : std::nullopt;
  if (!decoded) {
    return invalid("the master key has " + std::to_string(trimmed.size()) +
                   " characters and is neither 64 hex digits nor base64 of 32 bytes (44 "
                   "characters)");
  }
  Secret key = takeSecret(decoded);
  if (key.size() != kMasterKeySize) {
    return invalid("the master key decodes from base64 to " + std::to_string(key.size()) +
                   " bytes, but it must be 32 bytes");
  }
  return key;
}

Result<MasterKey> loadMasterKey(const MasterKeyOptions& options) {
  if (!options.env_value.empty()) {
    return keyFromEnvironment(options.env_value);
  }
  if (!options.key_file.empty()) {
    return keyFromFile(options.key_file, "file " + options.key_file);
  }
  if (options.data_dir.empty()) {
    return fail(ErrorCode::kInvalidRequest,
                "no master key: set KEYSTORE_MASTER_KEY, --master-key-file or a data directory");
  }

  if (Result<void> created = ensurePrivateDirectory(options.data_dir); !created) {
    return std::unexpected(created.error());
  }
  std::string path = masterKeyPath(options.data_dir);
  Result<MasterKey> existing = keyFromFile(path, "file " + path);
  if (existing || existing.error().code != ErrorCode::kNotFound) {
    return existing;
  }
  return generateKeyFile(path);
}

namespace {

// Adds `key` unless a key with the same id is already there.
void addUnique(std::vector<MasterKey>& keys, MasterKey key) {
  for (const MasterKey& known : keys) {
    if (known.id == key.id) {
      return;
    }
  }
  keys.push_back(std::move(key));
}

}  // namespace

Result<std::vector<MasterKey>> loadMasterKeyring(const MasterKeyOptions& options) {
  Result<MasterKey> current = loadMasterKey(options);
  if (!current) {
    return std::unexpected(current.error());
  }
  std::vector<MasterKey> keys;
  keys.push_back(std::move(*current));

  if (!options.previous_env_value.empty()) {
    Result<Secret> key = parseMasterKeyText(options.previous_env_value.reveal());
    if (!key) {
      return fail(key.error().code,
                  "KEYSTORE_PREVIOUS_MASTER_KEY is invalid: " + key.error().message);
    }
    Result<MasterKey> previous = makeMasterKey(std::move(*key), "previous environment");
    addUnique(keys, std::move(*previous));
  }
  if (!options.previous_key_file.empty()) {
    Result<MasterKey> previous =
        keyFromFile(options.previous_key_file, "previous file " + options.previous_key_file);
    if (!previous) {
      return std::unexpected(previous.error());
    }
    addUnique(keys, std::move(*previous));
  }

  bool data_dir_key = options.env_value.empty() && options.key_file.empty();
  if (data_dir_key) {
    Result<MasterKey> previous = readMasterKeyFile(previousMasterKeyPath(options.data_dir));
    if (previous) {
      addUnique(keys, std::move(*previous));
    } else if (previous.error().code != ErrorCode::kNotFound) {
      return std::unexpected(previous.error());
    }
  }
  return keys;
}

std::string masterKeyPath(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / kKeyFileName).string();
}

std::string previousMasterKeyPath(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / kPreviousKeyFileName).string();
}

MasterKey generateMasterKey(std::string source) {
  Secret key(randomBytes(kMasterKeySize));
  std::string id = masterKeyId(key);
  return MasterKey{std::move(key), std::move(id), std::move(source)};
}

Result<MasterKey> readMasterKeyFile(const std::string& path) {
  return keyFromFile(path, "file " + path);
}

Result<void> writeMasterKeyFile(const std::string& path, const MasterKey& key) {
  if (key.key.size() != kMasterKeySize) {
    return fail(ErrorCode::kInternal, "a master key must be 32 bytes long");
  }
  Secret file_text = keyFileText(key.key);
  if (Result<void> written = writePrivateFile(path, file_text.reveal()); !written) {
    return fail(written.error().code,
                "cannot write the master key file " + path + ": " + written.error().message);
  }
  return {};
}

}  // namespace keystore::vault
