// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title FlyTrap MQTT policy registry
/// @notice Holds the access policy an MQTT proxy enforces: topics (exact names or filters with + and #),
/// their owners, fees, allowed countries and members; and the accountability records only registered
/// reporters (the proxies) may write: bans, denied-attempt summaries, sensitive-topic reports, audit anchors.
/// Registrations of different owners never overlap: first registered wins (docs/namespaces.md, `_enter`).
/// @dev Storage is packed for gas: a topic is one slot (plus one for a join period and one for countries,
/// only when used); fees are held as whole gwei so both fit beside the owner and a grant is one slot holding both roles' expiries. Members are not kept
/// in an on-chain list: that would add a storage write to every grant and forbid the refund a full revoke
/// earns. They are enumerated from this contract's indexed Granted/Joined events and checked with member().
contract FlyTrap {
    // ---------------------------------------------------------------- types and constants

    uint8 internal constant ROLE_PUBLISH = 1;
    uint8 internal constant ROLE_SUBSCRIBE = 2;
    uint8 internal constant ROLES = ROLE_PUBLISH | ROLE_SUBSCRIBE;

    uint8 internal constant FLAG_SENSITIVE = 1;
    uint8 internal constant FLAG_OPEN = 2; // anyone may join by paying the fee (0 = free self-service)
    uint8 internal constant FLAG_LISTED = 128; // internal: the name is already in _names (survives removal)
    uint8 internal constant USER_FLAGS = FLAG_SENSITIVE | FLAG_OPEN;

    /// @dev Expiry meaning "until revoked".
    uint40 internal constant FOREVER = type(uint40).max;
    uint256 internal constant MAX_NAME_BYTES = 1024;
    uint256 internal constant MAX_COUNTRIES = 64;
    bytes32 internal constant ROOT = bytes32(0);

    /// @dev slot 0: owner | pubFee | subFee | flags | generation. slot 1: period. slot 2: countries.
    /// Fees are stored in gwei (the interface speaks wei and refuses amounts that are not whole gwei): one
    /// slot instead of two, and up to ~1,099 ETH per role. The generation changes when a topic is removed,
    /// which invalidates every grant on it at once; a name removed 255 times is retired (never re-registered)
    /// rather than let the generation wrap and revive old grants.
    struct Topic {
        address owner;
        uint40 pubFeeGwei;
        uint40 subFeeGwei;
        uint8 flags;
        uint8 gen;
        uint32 period; // seconds of access one join payment buys; 0 = permanent
        bytes countries; // ISO 3166-1 alpha-2 codes, two bytes each, ascending; empty = anywhere
    }

    /// @dev One slot per (topic, client): publish expiry | subscribe expiry | topic generation + 1.
    /// Expiry 0 = no access, FOREVER = until revoked, else valid while block.timestamp < expiry.
    /// Zero means "no grant", so a revoke that leaves nothing clears the slot and earns a refund.
    type Grant is uint256;

    /// @dev A node of the namespace tree (docs/namespaces.md), one word in `_nodes`. A registration's claim path
    /// is its levels before the first wildcard (all of them for an exact name). A filter claims every name at or
    /// under its claim path; an exact name claims only itself. Node ids: ROOT for the empty path, else keccak256
    /// of the path's bytes, so a name's own node id is its topic id. Per node, bits 224..255: filters claiming
    /// exactly this node; 192..223: total live registrations whose claim path runs through it (strictly through
    /// for an exact name: the name ending here is `_topics[node].owner`); 0..159: `sole`, the owner who entered
    /// it while it was empty, with 160..191 its registrations here (sole = 0 once it has left while others stay).
    /// O(depth) nodes are read and written per registration, removal and transfer.
    uint256 internal constant NODE_SOLE = 1 << 160;
    uint256 internal constant NODE_TOTAL = 1 << 192;
    uint256 internal constant NODE_FILTER = 1 << 224;

    struct TopicInfo {
        bytes32 id;
        string name;
        address owner;
        uint256 pubFee;
        uint256 subFee;
        bool sensitive;
        bool open;
        uint32 period;
        bytes countries;
        uint8 gen;
    }

    /// @dev A reporter's registration and the end of its anchor sequence: the last seq anchored, the end of
    /// the last anchored time range (unix seconds, exclusive) and how many anchors it sent.
    struct ReporterState {
        bool active;
        uint64 lastSeq;
        uint64 toTime;
        uint64 anchors;
    }

    // ---------------------------------------------------------------- state

    address public admin;
    address public pendingAdmin;
    /// @dev One slot, read and written together by addTopic: the fee and the name counter.
    uint96 public registrationFee;
    uint64 public topicCount;
    /// @dev Keeps the counter slot non-zero so the first topic does not pay for a fresh slot.
    uint8 private _warm;

    mapping(bytes32 => Topic) internal _topics;
    mapping(bytes32 => mapping(address => Grant)) internal _grants;
    mapping(uint256 => string) internal _names;
    mapping(address => uint256) public balanceOf;
    mapping(bytes32 => uint256) internal _nodes;
    /// @dev One slot per reporter: registered?, and where its anchor sequence ends (read and written together).
    mapping(address => ReporterState) internal _reporters;
    /// @dev The hash-chain value after the last entry a reporter anchored, stored inverted (~chain) so that the
    /// genesis value 0x00…00 is a non-zero slot: addReporter pre-fills it, and no anchor pays for a fresh slot.
    mapping(address => bytes32) internal _anchorChain;
    /// @notice Chosen at deployment, never changed: whether sensitive reports may name addresses in clear
    /// (recordSensitiveClear, for permissioned chains). Off: only counts and a Merkle root of the per-address
    /// records go on chain (recordSensitive); the records live in the reporter's journal (docs/evidence.md).
    bool public immutable publicSensitiveLists;

    // ---------------------------------------------------------------- events

    event TopicAdded(bytes32 indexed topic, address indexed owner, string name, uint256 pubFee, uint256 subFee, uint8 flags, uint32 period, bytes countries, string reason);
    event TopicFeesChanged(bytes32 indexed topic, address indexed actor, uint256 pubFee, uint256 subFee, uint32 period, string reason);
    event TopicCountriesChanged(bytes32 indexed topic, address indexed actor, bytes countries, string reason);
    event TopicFlagsChanged(bytes32 indexed topic, address indexed actor, uint8 flags, string reason);
    event TopicTransferred(bytes32 indexed topic, address indexed from, address indexed to, string reason);
    event TopicRemoved(bytes32 indexed topic, address indexed actor, string reason);

    /// @dev Grants and revokes are made by the topic owner at that block (TopicAdded/TopicTransferred say who).
    event Granted(bytes32 indexed topic, address indexed client, uint8 indexed roles, uint40 expiresAt, string reason);
    event Revoked(bytes32 indexed topic, address indexed client, uint8 indexed roles, string reason);
    event Joined(bytes32 indexed topic, address indexed client, uint8 indexed roles, uint256 paid, uint40 pubExpiresAt, uint40 subExpiresAt);
    event Withdrawn(address indexed owner, address indexed to, uint256 amount);

    event AdminTransferStarted(address indexed admin, address indexed pendingAdmin);
    event AdminChanged(address indexed previousAdmin, address indexed newAdmin);
    event RegistrationFeeChanged(address indexed actor, uint256 fee);
    event ReporterAdded(address indexed reporter, address indexed actor, string reason);
    event ReporterRemoved(address indexed reporter, address indexed actor, string reason);

    event Banned(bytes32 indexed subject, address indexed reporter, uint64 until, string reason);
    event DeniedSummary(address indexed reporter, uint64 fromTime, uint64 toTime, bytes32[] topics, uint32[] counts);
    /// @dev A sensitive topic's period as a commitment: distinct publishers and receivers, their allowed decisions
    /// in total, and the Merkle root of the per-address records (src/lib/audit/sensitive-members.ts), no address.
    event SensitiveReport(bytes32 indexed topic, address indexed reporter, uint64 fromTime, uint64 toTime, uint32 publishers, uint32 published, uint32 receivers, uint32 received, bytes32 membersRoot);
    /// @dev The same in clear, only on a deployment made with publicSensitiveLists (permissioned chains).
    event SensitiveReportClear(bytes32 indexed topic, address indexed reporter, uint64 fromTime, uint64 toTime, address[] publishers, uint32[] published, address[] receivers, uint32[] received);
    /// @dev One link of a reporter's anchor sequence: the journal entries firstSeq..firstSeq+count-1, dated in
    /// [fromTime, toTime), have Merkle root `root` (0 when count is 0), scope index root `index` (per scope key
    /// the seqs under it, docs/audit.md; 0 when no entry has a key) and the hash chain after the last of them
    /// is `chain`. Each link starts where the reporter's previous one ended (time, seq and chain value).
    event Anchored(address indexed reporter, uint64 indexed fromTime, uint64 toTime, uint64 firstSeq, uint64 count, bytes32 root, bytes32 index, bytes32 chain);

    // ---------------------------------------------------------------- errors

    error NotAdmin();
    error NotPendingAdmin();
    error NotReporter();
    error NotTopicOwner(bytes32 topic);
    error TopicExists(bytes32 topic);
    error UnknownTopic(bytes32 topic);
    error InvalidTopicName(uint256 position);
    error InvalidCountries();
    error InvalidRoles();
    error InvalidAddress();
    error InvalidExpiry();
    error InvalidPeriods();
    error InvalidFee();
    error NameRetired(bytes32 topic);
    error WrongPayment(uint256 expected);
    error NotOpen(bytes32 topic);
    error AlreadyMember();
    error NothingToWithdraw();
    error WithdrawFailed();
    error LengthMismatch();
    /// @dev recordSensitiveClear on a deployment without publicSensitiveLists.
    error ClearListsDisabled();
    /// @dev Another owner's filter claims everything under `prefix` (its claim path), which holds this name.
    error NamespaceClaimed(string prefix, address owner);
    /// @dev This filter would claim everything under `prefix`, where `owner` (0: several owners) holds a registration.
    error NamespaceOccupied(string prefix, address owner);
    error InvalidAnchor();
    /// @dev The range starts after the end of the reporter's last anchor: a period would go unanchored.
    error AnchorGap(uint64 expectedFromTime);
    /// @dev The range starts before the end of the reporter's last anchor: that time is anchored already.
    error AnchorOverlap(uint64 expectedFromTime);
    error AnchorWrongSeq(uint64 expectedFirstSeq);
    error AnchorWrongChain(bytes32 expectedPrevChain);

    // ---------------------------------------------------------------- modifiers

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin();
        _;
    }

    modifier onlyReporter() {
        if (!_reporters[msg.sender].active) revert NotReporter();
        _;
    }

    constructor(bool publicSensitiveLists_) {
        publicSensitiveLists = publicSensitiveLists_;
        admin = msg.sender;
        _warm = 1;
        emit AdminChanged(address(0), msg.sender);
    }

    // ---------------------------------------------------------------- topics

    /// @notice Registers a topic name or filter owned by the caller. Pays the deployment's registration fee.
    function addTopic(
        string calldata name,
        uint256 pubFee,
        uint256 subFee,
        uint8 flags,
        uint32 period,
        bytes calldata countries,
        string calldata reason
    ) external payable {
        uint96 regFee = registrationFee;
        if (msg.value != regFee) revert WrongPayment(regFee);
        _validateName(bytes(name));
        if (flags & ~USER_FLAGS != 0) revert InvalidRoles();
        bytes32 id = keccak256(bytes(name));
        Topic storage t = _topics[id];
        if (t.owner != address(0)) revert TopicExists(id);
        if (t.gen == type(uint8).max) revert NameRetired(id);
        _enter(name, msg.sender);

        uint8 stored = t.flags; // keeps FLAG_LISTED of a removed topic, so the name is not listed twice
        if (stored & FLAG_LISTED == 0) {
            _names[topicCount++] = name;
            stored = FLAG_LISTED;
        }
        t.owner = msg.sender;
        t.pubFeeGwei = _gwei(pubFee);
        t.subFeeGwei = _gwei(subFee);
        t.flags = stored | flags;
        if (period != 0) t.period = period;
        if (countries.length != 0) {
            _validateCountries(countries);
            t.countries = countries;
        }
        if (msg.value != 0) balanceOf[admin] += msg.value;
        emit TopicAdded(id, msg.sender, name, pubFee, subFee, flags, period, countries, reason);
    }

    function setFees(string calldata name, uint256 pubFee, uint256 subFee, uint32 period, string calldata reason) external {
        (bytes32 id, Topic storage t) = _owned(name);
        t.pubFeeGwei = _gwei(pubFee);
        t.subFeeGwei = _gwei(subFee);
        t.period = period;
        emit TopicFeesChanged(id, msg.sender, pubFee, subFee, period, reason);
    }

    function setCountries(string calldata name, bytes calldata countries, string calldata reason) external {
        (bytes32 id, Topic storage t) = _owned(name);
        _validateCountries(countries);
        t.countries = countries;
        emit TopicCountriesChanged(id, msg.sender, countries, reason);
    }

    function setFlags(string calldata name, uint8 flags, string calldata reason) external {
        (bytes32 id, Topic storage t) = _owned(name);
        if (flags & ~USER_FLAGS != 0) revert InvalidRoles();
        t.flags = (t.flags & FLAG_LISTED) | flags;
        emit TopicFlagsChanged(id, msg.sender, flags, reason);
    }

    /// @notice Hands a topic to `newOwner`, who must not end up overlapping another owner's registration
    /// (the sender's included: a filter and the names under it move together, with transferTopics).
    function transferTopic(string calldata name, address newOwner, string calldata reason) external {
        (bytes32 id, Topic storage t) = _owned(name);
        if (newOwner == address(0)) revert InvalidAddress();
        if (newOwner != msg.sender) {
            _leave(name, msg.sender);
            _enter(name, newOwner);
        }
        t.owner = newOwner;
        emit TopicTransferred(id, msg.sender, newOwner, reason);
    }

    /// @notice Hands several topics to `newOwner` at once: all leave the sender before any is checked for
    /// `newOwner`, so overlapping registrations of the sender (a filter and the names under it) can move together.
    function transferTopics(string[] calldata names, address newOwner, string calldata reason) external {
        if (newOwner == address(0)) revert InvalidAddress();
        bool moves = newOwner != msg.sender;
        uint256 n = names.length;
        for (uint256 i; i < n; ++i) {
            (, Topic storage t) = _owned(names[i]);
            if (moves) {
                _leave(names[i], msg.sender);
                t.owner = address(0); // a duplicate in the list is then UnknownTopic, not counted twice
            }
        }
        for (uint256 i; i < n; ++i) {
            bytes32 id = keccak256(bytes(names[i]));
            if (moves) _enter(names[i], newOwner);
            _topics[id].owner = newOwner;
            emit TopicTransferred(id, msg.sender, newOwner, reason);
        }
    }

    /// @notice Removes a topic and, by bumping its generation, every grant on it. The name can be registered again.
    function removeTopic(string calldata name, string calldata reason) external {
        (bytes32 id, Topic storage t) = _owned(name);
        _leave(name, msg.sender);
        t.owner = address(0);
        t.pubFeeGwei = 0;
        t.subFeeGwei = 0;
        t.flags = FLAG_LISTED;
        t.gen += 1;
        t.period = 0;
        if (t.countries.length != 0) delete t.countries;
        emit TopicRemoved(id, msg.sender, reason);
    }

    // ---------------------------------------------------------------- grants

    /// @notice The topic owner grants `roles` (1 publish, 2 subscribe, 3 both) until `expiresAt` (0 = until revoked).
    function allow(string calldata name, address client, uint8 roles, uint40 expiresAt, string calldata reason) external {
        (bytes32 id, Topic storage t) = _owned(name);
        if (client == address(0)) revert InvalidAddress();
        if (roles == 0 || roles & ~ROLES != 0) revert InvalidRoles();
        uint40 expiry = expiresAt == 0 ? FOREVER : expiresAt;
        if (expiry <= block.timestamp) revert InvalidExpiry();

        uint8 gen = t.gen;
        (uint40 pubExp, uint40 subExp) = _load(id, client, gen);
        if (roles & ROLE_PUBLISH != 0) pubExp = expiry;
        if (roles & ROLE_SUBSCRIBE != 0) subExp = expiry;
        _grants[id][client] = _pack(pubExp, subExp, gen);
        emit Granted(id, client, roles, expiry, reason);
    }

    /// @notice The topic owner takes `roles` away from `client` at once.
    function revoke(string calldata name, address client, uint8 roles, string calldata reason) external {
        (bytes32 id, ) = _owned(name);
        if (roles == 0 || roles & ~ROLES != 0) revert InvalidRoles();
        uint256 g = Grant.unwrap(_grants[id][client]);
        if (g != 0) {
            // Clearing bits of a grant from an older generation is harmless: it grants nothing either way.
            if (roles & ROLE_PUBLISH != 0) g &= ~uint256(type(uint40).max);
            if (roles & ROLE_SUBSCRIBE != 0) g &= ~(uint256(type(uint40).max) << 40);
            if (uint80(g) == 0) g = 0; // no expiry left: clear the slot (storage refund)
            _grants[id][client] = Grant.wrap(g);
        }
        emit Revoked(id, client, roles, reason);
    }

    /// @notice Anyone joins an open topic by paying exactly the fee for the roles, `periods` times
    /// (a topic with a period sells time; one without sells permanent access, periods must be 1).
    function join(string calldata name, uint8 roles, uint32 periods) external payable {
        bytes32 id = keccak256(bytes(name));
        Topic storage t = _topics[id];
        address owner = t.owner;
        if (owner == address(0)) revert UnknownTopic(id);
        if (t.flags & FLAG_OPEN == 0) revert NotOpen(id);
        if (roles == 0 || roles & ~ROLES != 0) revert InvalidRoles();
        if (msg.sender == owner) revert AlreadyMember();
        uint32 period = t.period;
        if (periods == 0 || (period == 0 && periods != 1)) revert InvalidPeriods();

        uint256 unit = (roles & ROLE_PUBLISH != 0 ? uint256(t.pubFeeGwei) : 0) + (roles & ROLE_SUBSCRIBE != 0 ? uint256(t.subFeeGwei) : 0);
        uint256 price = unit * 1 gwei * periods;
        if (msg.value != price) revert WrongPayment(price);

        uint8 gen = t.gen;
        (uint40 pubExp, uint40 subExp) = _load(id, msg.sender, gen);
        if (roles & ROLE_PUBLISH != 0) pubExp = _extend(pubExp, period, periods);
        if (roles & ROLE_SUBSCRIBE != 0) subExp = _extend(subExp, period, periods);
        _grants[id][msg.sender] = _pack(pubExp, subExp, gen);
        if (price != 0) balanceOf[owner] += price;
        emit Joined(id, msg.sender, roles, price, pubExp, subExp);
    }

    /// @notice Pull payment: sends the caller's accrued fees to `to`.
    function withdraw(address payable to) external {
        uint256 amount = balanceOf[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        if (to == address(0)) revert InvalidAddress();
        balanceOf[msg.sender] = 0; // effects before the call: re-entry finds nothing left
        (bool ok, ) = to.call{value: amount}("");
        if (!ok) revert WithdrawFailed();
        emit Withdrawn(msg.sender, to, amount);
    }

    // ---------------------------------------------------------------- admin and reporters

    function transferAdmin(address newAdmin) external onlyAdmin {
        pendingAdmin = newAdmin;
        emit AdminTransferStarted(msg.sender, newAdmin);
    }

    function acceptAdmin() external {
        if (msg.sender != pendingAdmin) revert NotPendingAdmin();
        emit AdminChanged(admin, msg.sender);
        admin = msg.sender;
        pendingAdmin = address(0);
    }

    function setRegistrationFee(uint96 fee) external onlyAdmin {
        registrationFee = fee;
        emit RegistrationFeeChanged(msg.sender, fee);
    }

    function addReporter(address reporter, string calldata reason) external onlyAdmin {
        if (reporter == address(0)) revert InvalidAddress();
        _reporters[reporter].active = true;
        if (_anchorChain[reporter] == 0) _anchorChain[reporter] = ~bytes32(0);
        emit ReporterAdded(reporter, msg.sender, reason);
    }

    function removeReporter(address reporter, string calldata reason) external onlyAdmin {
        _reporters[reporter].active = false; // its anchor sequence is kept: re-adding continues it
        emit ReporterRemoved(reporter, msg.sender, reason);
    }

    // ---------------------------------------------------------------- reporter records (events only)

    /// @notice Bans, batched. `subject` is a client address (left-padded) or a keyed hash of an IP address;
    /// clear IP addresses never go on chain.
    function recordBans(bytes32[] calldata subjects, uint64[] calldata untils, string calldata reason) external onlyReporter {
        if (subjects.length != untils.length) revert LengthMismatch();
        for (uint256 i; i < subjects.length; ++i) emit Banned(subjects[i], msg.sender, untils[i], reason);
    }

    function recordDenied(uint64 fromTime, uint64 toTime, bytes32[] calldata topics, uint32[] calldata counts) external onlyReporter {
        if (topics.length != counts.length) revert LengthMismatch();
        emit DeniedSummary(msg.sender, fromTime, toTime, topics, counts);
    }

    /// @notice A sensitive topic's period without addresses: counts and the root of the per-address records.
    function recordSensitive(
        bytes32 topicId,
        uint64 fromTime,
        uint64 toTime,
        uint32 publishers,
        uint32 published,
        uint32 receivers,
        uint32 received,
        bytes32 membersRoot
    ) external onlyReporter {
        emit SensitiveReport(topicId, msg.sender, fromTime, toTime, publishers, published, receivers, received, membersRoot);
    }

    /// @notice The paper's report, addresses in clear: only where the deployment chose publicSensitiveLists.
    function recordSensitiveClear(
        bytes32 topicId,
        uint64 fromTime,
        uint64 toTime,
        address[] calldata publishers,
        uint32[] calldata published,
        address[] calldata receivers,
        uint32[] calldata received
    ) external onlyReporter {
        if (!publicSensitiveLists) revert ClearListsDisabled();
        if (publishers.length != published.length || receivers.length != received.length) revert LengthMismatch();
        emit SensitiveReportClear(topicId, msg.sender, fromTime, toTime, publishers, published, receivers, received);
    }

    /// @notice Anchors the journal entries firstSeq..firstSeq+count-1 dated in [fromTime, toTime) (unix seconds):
    /// their Merkle root and the hash-chain value after the last of them. A reporter's anchors form one gap-free
    /// sequence: each starts where its previous one ended (fromTime, firstSeq and prevChain), so a period can
    /// be anchored only once and none can be skipped. An empty range (count 0) has root 0 and index 0 and leaves
    /// the chain unchanged. `index` is the root of the range's scope index (what a filtered evidence bundle
    /// proves its completeness against). The first anchor of a reporter may start anywhere (a journal older
    /// than its registration).
    function anchor(uint64 fromTime, uint64 toTime, uint64 firstSeq, uint64 count, bytes32 root, bytes32 index, bytes32 prevChain, bytes32 chain) external {
        ReporterState storage s = _reporters[msg.sender];
        ReporterState memory r = s;
        if (!r.active) revert NotReporter();
        if (toTime <= fromTime || firstSeq == 0) revert InvalidAnchor();
        if (count == 0 ? (root != 0 || index != 0 || chain != prevChain) : root == 0) revert InvalidAnchor();
        if (r.anchors != 0) {
            if (fromTime < r.toTime) revert AnchorOverlap(r.toTime);
            if (fromTime > r.toTime) revert AnchorGap(r.toTime);
            if (firstSeq != r.lastSeq + 1) revert AnchorWrongSeq(r.lastSeq + 1);
            bytes32 expected = ~_anchorChain[msg.sender];
            if (prevChain != expected) revert AnchorWrongChain(expected);
        }
        s.lastSeq = firstSeq + count - 1;
        s.toTime = toTime;
        s.anchors = r.anchors + 1;
        if (count != 0 || r.anchors == 0) _anchorChain[msg.sender] = ~chain;
        emit Anchored(msg.sender, fromTime, toTime, firstSeq, count, root, index, chain);
    }

    // ---------------------------------------------------------------- views

    function isReporter(address reporter) external view returns (bool) {
        return _reporters[reporter].active;
    }

    /// @notice Where a reporter's anchor sequence ends: the next anchor must start at (toTime, lastSeq + 1, chain).
    function anchorCursor(address reporter) external view returns (uint64 lastSeq, uint64 toTime, bytes32 chain, uint64 anchors) {
        ReporterState memory r = _reporters[reporter];
        return (r.lastSeq, r.toTime, r.anchors == 0 ? bytes32(0) : ~_anchorChain[reporter], r.anchors);
    }

    /// @notice Topics by registration order. Removed topics keep their place (owner = 0) so pages are stable.
    function topicsPage(uint256 offset, uint256 limit) external view returns (TopicInfo[] memory page) {
        uint256 total = topicCount;
        if (offset >= total) return new TopicInfo[](0);
        uint256 end = limit > total - offset ? total : offset + limit;
        page = new TopicInfo[](end - offset);
        for (uint256 i = offset; i < end; ++i) page[i - offset] = _info(_names[i]);
    }

    function topic(string calldata name) external view returns (TopicInfo memory) {
        return _info(name);
    }

    /// @notice A client's current grant on a topic: expiries (0 = none, 2^40-1 = until revoked).
    function member(string calldata name, address client) external view returns (uint40 pubExpiry, uint40 subExpiry) {
        bytes32 id = keccak256(bytes(name));
        Topic storage t = _topics[id];
        if (t.owner == address(0)) return (0, 0);
        return _load(id, client, t.gen);
    }

    /// @notice `member` for many (topic id, client) pairs in one call: a proxy's cold start reads every grant.
    function grantsOf(bytes32[] calldata topicIds, address[] calldata clients) external view returns (uint40[] memory pubExpiry, uint40[] memory subExpiry) {
        require(topicIds.length == clients.length);
        pubExpiry = new uint40[](clients.length);
        subExpiry = new uint40[](clients.length);
        for (uint256 i = 0; i < clients.length; ++i) {
            Topic storage t = _topics[topicIds[i]];
            if (t.owner != address(0)) (pubExpiry[i], subExpiry[i]) = _load(topicIds[i], clients[i], t.gen);
        }
    }

    /// @notice Whether `client` holds `role` (1 publish, 2 subscribe) on the topic now. The owner holds both.
    function canAccess(string calldata name, address client, uint8 role) external view returns (bool) {
        bytes32 id = keccak256(bytes(name));
        Topic storage t = _topics[id];
        if (t.owner == address(0)) return false;
        if (client == t.owner) return true;
        (uint40 pubExp, uint40 subExp) = _load(id, client, t.gen);
        uint40 exp = role == ROLE_PUBLISH ? pubExp : role == ROLE_SUBSCRIBE ? subExp : 0;
        return exp > block.timestamp;
    }

    // ---------------------------------------------------------------- internals

    function _owned(string calldata name) internal view returns (bytes32 id, Topic storage t) {
        id = keccak256(bytes(name));
        t = _topics[id];
        address owner = t.owner;
        if (owner == address(0)) revert UnknownTopic(id);
        if (owner != msg.sender) revert NotTopicOwner(id);
    }

    /// @dev Counts a registration of `name` by `who` into every node of its claim path, refusing first any node
    /// where it would overlap another owner's registration: an ancestor (or, for an exact name, its own node)
    /// claimed by another owner's filter; for a filter, a claim node under which anyone else holds anything.
    function _enter(string calldata name, address who) internal {
        (uint256 ptr, uint256 len) = _copy(name);
        bytes32 node = ROOT;
        uint256 end; // byte length of node's path
        for (uint256 i; i < len; ) {
            uint256 c;
            assembly ("memory-safe") {
                c := byte(0, mload(add(ptr, i)))
            }
            if (c == 0x2b || c == 0x23) {
                // '+' or '#': a filter, and `node` is its claim node. Nobody else may hold anything at or under it.
                uint256 n = _nodes[node];
                uint256 total = uint32(n >> 192);
                address sole = address(uint160(n));
                if (total != 0 && (sole != who || uint32(n >> 160) != total)) {
                    if (n >> 224 != 0) revert NamespaceClaimed(name[:end], sole);
                    revert NamespaceOccupied(name[:end], sole == who ? address(0) : sole); // 0: other owners
                }
                if (node != ROOT) {
                    address exact = _topics[node].owner; // the exact name equal to the claim path
                    if (exact != address(0) && exact != who) revert NamespaceOccupied(name[:end], exact);
                }
                _nodes[node] = _entered(n, who) + NODE_FILTER;
                return;
            }
            if (c == 0x2f) {
                // '/': a level ends, `node` is a strict ancestor.
                _ancestor(node, name[:end], who);
                end = i;
                node = _hash(ptr, i);
            }
            unchecked {
                ++i;
            }
        }
        // An exact name: its last strict ancestor, then its own node, which only another owner's filter can claim.
        _ancestor(node, name[:end], who);
        uint256 own = _nodes[_hash(ptr, len)];
        if (own >> 224 != 0 && address(uint160(own)) != who) revert NamespaceClaimed(name, address(uint160(own)));
    }

    function _ancestor(bytes32 node, string calldata prefix, address who) internal {
        uint256 n = _nodes[node];
        if (n >> 224 != 0 && address(uint160(n)) != who) revert NamespaceClaimed(prefix, address(uint160(n)));
        _nodes[node] = _entered(n, who);
    }

    /// @dev Counts never overflow in practice (2^32 registrations at ~90 k gas each), so plain adds are safe.
    function _entered(uint256 n, address who) internal pure returns (uint256) {
        if (n == 0) return uint256(uint160(who)) | NODE_SOLE | NODE_TOTAL; // empty: `who` is its first owner
        unchecked {
            return address(uint160(n)) == who ? n + NODE_SOLE + NODE_TOTAL : n + NODE_TOTAL;
        }
    }

    /// @dev Undoes _enter for a live registration of `name` by `who` (no checks: leaving never overlaps).
    function _leave(string calldata name, address who) internal {
        (uint256 ptr, uint256 len) = _copy(name);
        bytes32 node = ROOT;
        for (uint256 i; i < len; ) {
            uint256 c;
            assembly ("memory-safe") {
                c := byte(0, mload(add(ptr, i)))
            }
            if (c == 0x2b || c == 0x23) {
                _nodes[node] = _left(_nodes[node] - NODE_FILTER, who);
                return;
            }
            if (c == 0x2f) {
                _nodes[node] = _left(_nodes[node], who);
                node = _hash(ptr, i);
            }
            unchecked {
                ++i;
            }
        }
        _nodes[node] = _left(_nodes[node], who);
    }

    function _left(uint256 n, address who) internal pure returns (uint256) {
        n -= NODE_TOTAL;
        if (address(uint160(n)) == who) n -= NODE_SOLE;
        if (uint32(n >> 192) == 0) return 0; // empty
        if (uint32(n >> 160) == 0) n &= ~uint256(type(uint160).max); // its first owner gone, others stay: sole unknown
        return n;
    }

    /// @dev The name copied to memory once, so every prefix is hashed without another copy.
    function _copy(string calldata name) internal pure returns (uint256 ptr, uint256 len) {
        len = bytes(name).length;
        assembly ("memory-safe") {
            ptr := mload(0x40)
            calldatacopy(ptr, name.offset, len)
            mstore(0x40, add(ptr, and(add(len, 31), not(31))))
        }
    }

    function _hash(uint256 ptr, uint256 len) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            h := keccak256(ptr, len)
        }
    }

    /// @dev A grant's expiries, treating one from an older generation of the topic as absent.
    function _load(bytes32 id, address client, uint8 gen) internal view returns (uint40 pubExp, uint40 subExp) {
        uint256 g = Grant.unwrap(_grants[id][client]);
        if (g >> 80 != uint256(gen) + 1) return (0, 0);
        return (uint40(g), uint40(g >> 40));
    }

    function _pack(uint40 pubExp, uint40 subExp, uint8 gen) internal pure returns (Grant) {
        return Grant.wrap(uint256(pubExp) | (uint256(subExp) << 40) | ((uint256(gen) + 1) << 80));
    }

    function _extend(uint40 current, uint32 period, uint32 periods) internal view returns (uint40) {
        if (period == 0) {
            if (current == FOREVER) revert AlreadyMember();
            return FOREVER;
        }
        if (current == FOREVER) revert AlreadyMember();
        // Buying more time extends an unexpired grant instead of overwriting it.
        uint256 from = current > block.timestamp ? current : block.timestamp;
        uint256 until = from + uint256(period) * periods;
        if (until >= FOREVER) revert InvalidPeriods();
        return uint40(until);
    }

    /// @dev Wei → stored gwei; refuses fractions of a gwei and amounts over ~1,099 ETH.
    function _gwei(uint256 weiAmount) internal pure returns (uint40) {
        if (weiAmount % 1 gwei != 0 || weiAmount / 1 gwei > type(uint40).max) revert InvalidFee();
        return uint40(weiAmount / 1 gwei);
    }

    function _info(string memory name) internal view returns (TopicInfo memory info) {
        bytes32 id = keccak256(bytes(name));
        Topic storage t = _topics[id];
        info = TopicInfo(id, name, t.owner, uint256(t.pubFeeGwei) * 1 gwei, uint256(t.subFeeGwei) * 1 gwei, t.flags & FLAG_SENSITIVE != 0, t.flags & FLAG_OPEN != 0, t.period, t.countries, t.gen);
    }

    /// @dev MQTT topic names and filters: 1..1024 bytes, no NUL, '+' and '#' only as whole levels, '#' last,
    /// no '$share/' prefix (shared subscriptions are authorised as their inner filter). Full UTF-8
    /// well-formedness is checked by the CLI; a malformed name here could never match a real topic.
    function _validateName(bytes calldata b) internal pure {
        uint256 len = b.length;
        if (len == 0 || len > MAX_NAME_BYTES) revert InvalidTopicName(0);
        if (len >= 7 && bytes7(b[:7]) == "$share/") revert InvalidTopicName(0);
        for (uint256 i; i < len; ++i) {
            bytes1 c = b[i];
            if (c == 0x00) revert InvalidTopicName(i);
            if (c == "+" || c == "#") {
                bool startsLevel = i == 0 || b[i - 1] == "/";
                bool endsLevel = i + 1 == len || b[i + 1] == "/";
                if (!startsLevel || !endsLevel || (c == "#" && i + 1 != len)) revert InvalidTopicName(i);
            }
        }
    }

    /// @dev Two upper-case ASCII letters per code, strictly ascending (so no duplicates), at most 64 codes.
    function _validateCountries(bytes calldata c) internal pure {
        uint256 len = c.length;
        if (len % 2 != 0 || len > MAX_COUNTRIES * 2) revert InvalidCountries();
        uint16 prev;
        for (uint256 i; i < len; i += 2) {
            bytes1 a = c[i];
            bytes1 b = c[i + 1];
            if (a < "A" || a > "Z" || b < "A" || b > "Z") revert InvalidCountries();
            uint16 code = (uint16(uint8(a)) << 8) | uint8(b);
            if (code <= prev) revert InvalidCountries();
            prev = code;
        }
    }
}
