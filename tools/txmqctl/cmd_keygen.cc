// txmqctl keygen NAME: a CURVE key pair for a broker or a client, written
// as NAME.key (secret, mode 0600) and NAME.pub (public) in the current
// directory (NAME may carry a directory). Offline: no broker involved.
#include <iostream>

#include "protocol/src/curve_keys.h"
#include "tools/txmqctl/ctl.h"

namespace txmq::ctl {

void AddKeygenCommand(CLI::App& app, Ctl& ctl, Runner& run) {
  auto* cmd = app.add_subcommand(
      "keygen",
      "Make a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub (public)\n"
      "Give the broker its NAME.key (txmqd --curve-secret-key) and clients its NAME.pub\n"
      "(--server-key); put a client's NAME.pub into the broker's ACL and give the client\n"
      "its NAME.key (--curve-key). Never overwrites a key.\n"
      "Example: txmqctl keygen orders-service");
  auto name = std::make_shared<std::string>();
  cmd->add_option("NAME", *name, "File name without extension (may include a directory)")
      ->required();
  cmd->callback([&ctl, &run, name] {
    run = [&ctl, name]() -> int {
      if (name->empty() || name->back() == '/') {
        return ctl.Usage("keygen NAME '" + *name + "' must name a file, not a directory");
      }
      auto pair = curve::NewKeyPair();
      if (!pair.ok()) return ctl.Fail(pair.status());
      if (Status s = curve::WriteKeyPair(*name, *pair); !s.ok()) return ctl.Fail(s);
      if (ctl.json()) {
        PrintJson({{"secret_key_file", *name + ".key"},
                   {"public_key_file", *name + ".pub"},
                   {"public_key", pair->public_key}});
      } else {
        std::cout << "wrote " << *name << ".key (secret, mode 0600) and " << *name
                  << ".pub\npublic key " << pair->public_key << "\n";
      }
      return kExitOk;
    };
  });
}

}  // namespace txmq::ctl
