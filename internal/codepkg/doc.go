// Package codepkg decides which deployment packages (function code zips)
// are safe, and unpacks them so that none can write outside its directory.
//
// The registry calls Open and Verify when code is uploaded
// (CreateFunction, UpdateFunctionCode): a refusal is an *Error of class
// errdefs.ErrInvalidArgument, which the API reports as
// InvalidParameterValueException. The worker's code cache calls Open and
// Unpack before a sandbox runs the code, and never trusts that the registry
// checked: both sides make the same decisions with the same code.
//
//	zip bytes ─► Open ─► Package (the tree the entries declare)
//	                       ├─► Verify   inflate all, write nothing (registry)
//	                       └─► Unpack   write through os.Root (worker)
//
// Open builds an in-memory model of the tree: each entry's normalised
// name, its kind (directory, file, symbolic link) and a link's target. A
// link is then resolved in the model the way the kernel will resolve it on
// disk (component by component, each link's target relative to its own
// directory, ".." applied to where the walk stands, at most 40 links), so
// "does this link leave the package" is never answered lexically, link by
// link: two links that each look harmless ("up" → "..", "x" → "up/..")
// are judged together.
//
// Unpack does not rely on the model being right to stay inside: every path
// operation goes through an os.Root on the destination, and links are
// created last, after every directory and file, so no write traverses one.
//
// What each hostile entry meets (refused means Open, Verify or Unpack
// fails with *Error; nothing is ever written outside the root):
//
//	absolute name ("/etc/x"), drive letter, backslash,  refused
//	  NUL byte, ".." component, empty name
//	"" or "." components ("./a//b")                    made harmless: normalised ("a/b")
//	"./" (the root itself) as a directory               made harmless: skipped
//	name or component over PATH_MAX / NAME_MAX          refused
//	device, fifo, socket, irregular file                refused
//	set-uid, set-gid, sticky bits                       made harmless: files get 0644 or
//	                                                    0755 (exec bit kept), dirs 0755
//	the same name twice (after normalising), any kinds  refused
//	an entry beneath a file or a symbolic link          refused (the unpacker never
//	                                                    writes through a link)
//	a file where other entries imply a directory        refused
//	link with an absolute or empty target               refused
//	link whose resolution leaves the package, even      refused
//	  for a moment, even through other links
//	link that needs more than 40 links to resolve       refused (the kernel's ELOOP)
//	link that stays inside, dangling or not             kept, as Lambda keeps it
//	corrupt data: CRC mismatch, truncated entry,        refused (every entry is read
//	  size unlike the header's                          to its end through archive/zip)
//	bombs: declared or inflated total over              refused
//	  MaxUnzippedSize, ratio over 1100:1, entries
//	  sharing compressed data, over MaxEntries entries
package codepkg
