using System.Globalization;

namespace Bpfilter.Engine.Ebpf;

/// <summary>What the immediate of a map load (ld_imm64 with src_reg 1 or 2) holds.</summary>
public enum MapImmediate
{
    /// <summary>A file descriptor, as a program is handed to BPF_PROG_LOAD: <c>map[fd:3]</c>.</summary>
    FileDescriptor,
    /// <summary>A map id, as the kernel reports a loaded program's translated image: <c>map[id:12]</c>.</summary>
    Id,
}

/// <summary>How <see cref="Disassembler"/> names what an instruction refers to.</summary>
public sealed record DisassemblyOptions
{
    public static readonly DisassemblyOptions Default = new();

    public MapImmediate MapImmediate { get; init; } = MapImmediate.FileDescriptor;

    /// <summary>Map names by the index of their ld_imm64; a name wins over the immediate: <c>map[c_INPUT]</c>.</summary>
    public IReadOnlyDictionary<int, string>? MapNames { get; init; }

    /// <summary>Kernel function names by the index of their call; a name wins over the BTF id's placeholder: <c>call bpf_dynptr_from_skb#0</c>.</summary>
    public IReadOnlyDictionary<int, string>? KfuncNames { get; init; }

    /// <summary>
    /// Asked first for helper and kfunc calls (src_reg 0 and 2); null falls back to the helper id table. A translated
    /// image needs it: there the kernel has replaced helper ids with addresses relative to <c>__bpf_call_base</c>.
    /// </summary>
    public Func<Instruction, string?>? CallName { get; init; }
}

/// <summary>One listed instruction: the index of its first slot, how many slots it spans, and its text.</summary>
public readonly record struct DisassembledInstruction(int Index, int Slots, string Text)
{
    /// <summary>The line as <c>bpftool prog dump xlated</c> prints it: <c>   5: (2d) if r2 > r9 goto pc+24</c>.</summary>
    public string Line => Disassembler.FormatLine(Index, Text);

    public override string ToString() => Line;
}

/// <summary>
/// Turns instructions into the text the kernel's verifier log and <c>bpftool prog dump xlated</c> print
/// (kernel/bpf/disasm.c): one line per instruction, a 64-bit immediate load as one line for its two slots.
/// Never throws: an opcode the kernel does not define reads <c>(xx) unknown opcode</c>.
/// </summary>
public static class Disassembler
{
    private const string Unknown = "unknown opcode";

    // enum bpf_func_id, as this kernel's BTF lists it (ids 0..211); the kernel prints them with a "bpf_" prefix.
    private static readonly string[] HelperNames =
    [
        "unspec", "map_lookup_elem", "map_update_elem", "map_delete_elem", "probe_read", "ktime_get_ns", "trace_printk", "get_prandom_u32",
        "get_smp_processor_id", "skb_store_bytes", "l3_csum_replace", "l4_csum_replace", "tail_call", "clone_redirect", "get_current_pid_tgid", "get_current_uid_gid",
        "get_current_comm", "get_cgroup_classid", "skb_vlan_push", "skb_vlan_pop", "skb_get_tunnel_key", "skb_set_tunnel_key", "perf_event_read", "redirect",
        "get_route_realm", "perf_event_output", "skb_load_bytes", "get_stackid", "csum_diff", "skb_get_tunnel_opt", "skb_set_tunnel_opt", "skb_change_proto",
        "skb_change_type", "skb_under_cgroup", "get_hash_recalc", "get_current_task", "probe_write_user", "current_task_under_cgroup", "skb_change_tail", "skb_pull_data",
        "csum_update", "set_hash_invalid", "get_numa_node_id", "skb_change_head", "xdp_adjust_head", "probe_read_str", "get_socket_cookie", "get_socket_uid",
        "set_hash", "setsockopt", "skb_adjust_room", "redirect_map", "sk_redirect_map", "sock_map_update", "xdp_adjust_meta", "perf_event_read_value",
        "perf_prog_read_value", "getsockopt", "override_return", "sock_ops_cb_flags_set", "msg_redirect_map", "msg_apply_bytes", "msg_cork_bytes", "msg_pull_data",
        "bind", "xdp_adjust_tail", "skb_get_xfrm_state", "get_stack", "skb_load_bytes_relative", "fib_lookup", "sock_hash_update", "msg_redirect_hash",
        "sk_redirect_hash", "lwt_push_encap", "lwt_seg6_store_bytes", "lwt_seg6_adjust_srh", "lwt_seg6_action", "rc_repeat", "rc_keydown", "skb_cgroup_id",
        "get_current_cgroup_id", "get_local_storage", "sk_select_reuseport", "skb_ancestor_cgroup_id", "sk_lookup_tcp", "sk_lookup_udp", "sk_release", "map_push_elem",
        "map_pop_elem", "map_peek_elem", "msg_push_data", "msg_pop_data", "rc_pointer_rel", "spin_lock", "spin_unlock", "sk_fullsock",
        "tcp_sock", "skb_ecn_set_ce", "get_listener_sock", "skc_lookup_tcp", "tcp_check_syncookie", "sysctl_get_name", "sysctl_get_current_value", "sysctl_get_new_value",
        "sysctl_set_new_value", "strtol", "strtoul", "sk_storage_get", "sk_storage_delete", "send_signal", "tcp_gen_syncookie", "skb_output",
        "probe_read_user", "probe_read_kernel", "probe_read_user_str", "probe_read_kernel_str", "tcp_send_ack", "send_signal_thread", "jiffies64", "read_branch_records",
        "get_ns_current_pid_tgid", "xdp_output", "get_netns_cookie", "get_current_ancestor_cgroup_id", "sk_assign", "ktime_get_boot_ns", "seq_printf", "seq_write",
        "sk_cgroup_id", "sk_ancestor_cgroup_id", "ringbuf_output", "ringbuf_reserve", "ringbuf_submit", "ringbuf_discard", "ringbuf_query", "csum_level",
        "skc_to_tcp6_sock", "skc_to_tcp_sock", "skc_to_tcp_timewait_sock", "skc_to_tcp_request_sock", "skc_to_udp6_sock", "get_task_stack", "load_hdr_opt", "store_hdr_opt",
        "reserve_hdr_opt", "inode_storage_get", "inode_storage_delete", "d_path", "copy_from_user", "snprintf_btf", "seq_printf_btf", "skb_cgroup_classid",
        "redirect_neigh", "per_cpu_ptr", "this_cpu_ptr", "redirect_peer", "task_storage_get", "task_storage_delete", "get_current_task_btf", "bprm_opts_set",
        "ktime_get_coarse_ns", "ima_inode_hash", "sock_from_file", "check_mtu", "for_each_map_elem", "snprintf", "sys_bpf", "btf_find_by_name_kind",
        "sys_close", "timer_init", "timer_set_callback", "timer_start", "timer_cancel", "get_func_ip", "get_attach_cookie", "task_pt_regs",
        "get_branch_snapshot", "trace_vprintk", "skc_to_unix_sock", "kallsyms_lookup_name", "find_vma", "loop", "strncmp", "get_func_arg",
        "get_func_ret", "get_func_arg_cnt", "get_retval", "set_retval", "xdp_get_buff_len", "xdp_load_bytes", "xdp_store_bytes", "copy_from_user_task",
        "skb_set_tstamp", "ima_file_hash", "kptr_xchg", "map_lookup_percpu_elem", "skc_to_mptcp_sock", "dynptr_from_mem", "ringbuf_reserve_dynptr", "ringbuf_submit_dynptr",
        "ringbuf_discard_dynptr", "dynptr_read", "dynptr_write", "dynptr_data", "tcp_raw_gen_syncookie_ipv4", "tcp_raw_gen_syncookie_ipv6", "tcp_raw_check_syncookie_ipv4", "tcp_raw_check_syncookie_ipv6",
        "ktime_get_tai_ns", "user_ringbuf_drain", "cgrp_storage_get", "cgrp_storage_delete",
    ];

    private static readonly string[] AluOps =
        ["+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian", "", ""];

    private static readonly string[] JumpOps =
        ["jmp", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<=", "", ""];

    private static readonly string[] Sizes = ["u32", "u16", "u8", "u64"];
    private static readonly string?[] SignedSizes = ["s32", "s16", "s8", null];

    // BPF_MEM, BPF_MEMSX, BPF_ATOMIC (and BPF_NOSPEC for the ST class), BPF_ABS, BPF_IND.
    private const int ModeMem = 0x60, ModeMemSx = 0x80, ModeAtomic = 0xc0, ModeAbs = 0x20, ModeInd = 0x40;
    private const int AtomicFetch = 0x01, AtomicXchg = 0xe0 | AtomicFetch, AtomicCmpXchg = 0xf0 | AtomicFetch;
    private const int LoadAcquire = 0x100, StoreRelease = 0x110;

    /// <summary>The kernel's name of helper <paramref name="id"/> (<c>bpf_map_lookup_elem</c>), or null for an id it does not define.</summary>
    public static string? HelperName(int id) => id >= 0 && id < HelperNames.Length ? "bpf_" + HelperNames[id] : null;

    /// <summary>Lists <paramref name="program"/>, naming each map load after its map (<c>map[c_INPUT]</c>) and each kfunc call after its function.</summary>
    public static IReadOnlyList<DisassembledInstruction> Disassemble(EbpfProgram program)
    {
        var maps = new Dictionary<int, string>();
        foreach (var reference in program.MapReferences) maps[reference.InstructionIndex] = reference.Map.Name;
        var kfuncs = new Dictionary<int, string>();
        foreach (var reference in program.KfuncReferences) kfuncs[reference.InstructionIndex] = reference.Name;
        return Disassemble(program.Instructions, new DisassemblyOptions { MapNames = maps, KfuncNames = kfuncs });
    }

    /// <summary>Lists <paramref name="instructions"/>: one entry per instruction, a 64-bit immediate load as one entry for two slots.</summary>
    public static IReadOnlyList<DisassembledInstruction> Disassemble(IReadOnlyList<Instruction> instructions, DisassemblyOptions? options = null)
    {
        options ??= DisassemblyOptions.Default;
        var lines = new List<DisassembledInstruction>(instructions.Count);
        for (int i = 0; i < instructions.Count;)
        {
            var instruction = instructions[i];
            if (instruction.IsLoadImm64)
            {
                if (i + 1 < instructions.Count)
                {
                    lines.Add(new DisassembledInstruction(i, 2, LoadImm64(instruction, instructions[i + 1], i, options)));
                    i += 2;
                }
                else
                {
                    lines.Add(new DisassembledInstruction(i, 1, $"({instruction.Opcode:x2}) r{instruction.Dst} = <ld_imm64 without its second slot>"));
                    i++;
                }
                continue;
            }
            lines.Add(new DisassembledInstruction(i, 1, Text(instruction, i, options)));
            i++;
        }
        return lines;
    }

    /// <summary>The text of one instruction without its index: <c>(bf) r6 = r1</c>. A 64-bit immediate load needs <paramref name="next"/>.</summary>
    public static string Format(Instruction instruction, Instruction? next = null, DisassemblyOptions? options = null)
    {
        options ??= DisassemblyOptions.Default;
        if (!instruction.IsLoadImm64) return Text(instruction, -1, options);
        return next is { } second
            ? LoadImm64(instruction, second, -1, options)
            : $"({instruction.Opcode:x2}) r{instruction.Dst} = <ld_imm64 without its second slot>";
    }

    /// <summary>bpftool's line layout: the index right-aligned in four columns (printf "% 4d: ").</summary>
    public static string FormatLine(int index, string text) =>
        (" " + index.ToString(CultureInfo.InvariantCulture)).PadLeft(4) + ": " + text;

    /// <summary>The whole listing as text, one line per instruction.</summary>
    public static string ToText(IEnumerable<DisassembledInstruction> lines) => string.Join("\n", lines.Select(l => l.Line));

    private static string Text(Instruction insn, int index, DisassemblyOptions options)
    {
        string body = insn.Class switch
        {
            OpClass.Alu or OpClass.Alu64 => Alu(insn),
            OpClass.Stx => Stx(insn),
            OpClass.St => St(insn),
            OpClass.Ldx => Ldx(insn),
            OpClass.Ld => Ld(insn),
            _ => Jump(insn, index, options),
        };
        return $"({insn.Opcode:x2}) {body}";
    }

    private static string Alu(Instruction insn)
    {
        bool is64 = insn.Class == OpClass.Alu64;
        char r = is64 ? 'r' : 'w';
        int op = insn.Opcode & 0xf0;
        bool x = (insn.Opcode & 0x08) != 0;
        int dst = insn.Dst, src = insn.Src;
        switch (op)
        {
            case > (int)AluOp.End:
                return Unknown;
            case (int)AluOp.End when is64:
                // ALU64 | END is the unconditional byte swap (BPF_K only).
                return x ? Unknown : $"r{dst} = bswap{I(insn.Immediate)} r{dst}";
            case (int)AluOp.End:
                return $"r{dst} = {(x ? "be" : "le")}{I(insn.Immediate)} r{dst}";
            case (int)AluOp.Neg:
                return x ? Unknown : $"{r}{dst} = -{r}{dst}";
        }
        if (insn.Opcode == 0xbf && insn.Offset == 1)
            return $"r{dst} = addr_space_cast(r{src}, {I((int)((uint)insn.Immediate >> 16))}, {I((ushort)insn.Immediate)})";
        if (insn.Opcode == 0xbf && insn.Offset == -1)
            return $"r{dst} = &(void __percpu *)(r{src})";
        bool signed = op is (int)AluOp.Div or (int)AluOp.Mod && insn.Offset == 1;
        string name = signed ? "s" + AluOps[op >> 4] : AluOps[op >> 4];
        if (!x) return $"{r}{dst} {name} {I(insn.Immediate)}";
        string extend = op == (int)AluOp.Mov && insn.Offset is 8 or 16 or 32 ? $"(s{insn.Offset})" : "";
        return $"{r}{dst} {name} {extend}{r}{src}";
    }

    private static string Stx(Instruction insn)
    {
        int mode = insn.Opcode & 0xe0;
        string size = Sizes[(insn.Opcode & 0x18) >> 3];
        string at = $"(r{insn.Dst} {S(insn.Offset)})";
        if (mode == ModeMem) return $"*({size} *){at} = r{insn.Src}";
        if (mode != ModeAtomic) return Unknown;

        bool wide = (insn.Opcode & 0x18) is (int)Size.Word or (int)Size.DoubleWord;
        string bits = (insn.Opcode & 0x18) == (int)Size.DoubleWord ? "64" : "";
        int imm = insn.Immediate;
        int aluOp = imm & ~AtomicFetch;
        bool arithmetic = aluOp is (int)AluOp.Add or (int)AluOp.And or (int)AluOp.Or or (int)AluOp.Xor;
        if (wide && arithmetic && (imm & AtomicFetch) == 0)
            return $"lock *({size} *){at} {AluOps[aluOp >> 4]} r{insn.Src}";
        if (wide && arithmetic)
        {
            string verb = aluOp switch { (int)AluOp.Add => "add", (int)AluOp.And => "and", (int)AluOp.Or => "or", _ => "xor" };
            return $"r{insn.Src} = atomic{bits}_fetch_{verb}(({size} *){at}, r{insn.Src})";
        }
        if (wide && imm == AtomicCmpXchg) return $"r0 = atomic{bits}_cmpxchg(({size} *){at}, r0, r{insn.Src})";
        if (wide && imm == AtomicXchg) return $"r{insn.Src} = atomic{bits}_xchg(({size} *){at}, r{insn.Src})";
        if (imm == LoadAcquire) return $"r{insn.Dst} = load_acquire(({size} *)(r{insn.Src} {S(insn.Offset)}))";
        if (imm == StoreRelease) return $"store_release(({size} *){at}, r{insn.Src})";
        return $"unknown atomic operation 0x{(uint)imm:x}";
    }

    private static string St(Instruction insn)
    {
        int mode = insn.Opcode & 0xe0;
        if (mode == ModeMem) return $"*({Sizes[(insn.Opcode & 0x18) >> 3]} *)(r{insn.Dst} {S(insn.Offset)}) = {I(insn.Immediate)}";
        // BPF_ST | BPF_NOSPEC: a speculation barrier the verifier inserts; never in a loaded program.
        if (insn.Opcode == 0xc2) return "nospec";
        return Unknown;
    }

    private static string Ldx(Instruction insn)
    {
        int mode = insn.Opcode & 0xe0;
        int size = (insn.Opcode & 0x18) >> 3;
        string? type = mode == ModeMem ? Sizes[size] : mode == ModeMemSx ? SignedSizes[size] : null;
        return type is null ? Unknown : $"r{insn.Dst} = *({type} *)(r{insn.Src} {S(insn.Offset)})";
    }

    private static string Ld(Instruction insn)
    {
        int mode = insn.Opcode & 0xe0;
        int size = (insn.Opcode & 0x18) >> 3;
        if (size == 3) return Unknown; // DW is only the 64-bit immediate load, handled with its second slot
        if (mode == ModeAbs) return $"r0 = *({Sizes[size]} *)skb[{I(insn.Immediate)}]";
        if (mode == ModeInd) return $"r0 = *({Sizes[size]} *)skb[r{insn.Src} + {I(insn.Immediate)}]";
        return Unknown;
    }

    private static string LoadImm64(Instruction insn, Instruction next, int index, DisassemblyOptions options)
    {
        ulong full = ((ulong)(uint)next.Immediate << 32) | (uint)insn.Immediate;
        string? name = index >= 0 && options.MapNames is { } names && names.TryGetValue(index, out var n) ? n : null;
        string map = name ?? (options.MapImmediate == MapImmediate.Id ? $"id:{I(insn.Immediate)}" : $"fd:{I(insn.Immediate)}");
        string value = insn.Src switch
        {
            1 => $"map[{map}]",                                              // BPF_PSEUDO_MAP_FD
            2 => $"map[{map}][0]+{I(next.Immediate)}",                       // BPF_PSEUDO_MAP_VALUE
            4 => $"subprog[{S(insn.Immediate)}]",                            // BPF_PSEUDO_FUNC
            5 => name is null ? $"map[idx:{I(insn.Immediate)}]" : $"map[{name}]",              // BPF_PSEUDO_MAP_IDX
            6 => name is null ? $"map[idx:{I(insn.Immediate)}]+{I(next.Immediate)}" : $"map[{name}]+{I(next.Immediate)}", // BPF_PSEUDO_MAP_IDX_VALUE
            _ => $"0x{full:x}",                                               // a constant, or a BTF id (3)
        };
        return $"({insn.Opcode:x2}) r{insn.Dst} = {value}";
    }

    private static string Jump(Instruction insn, int index, DisassemblyOptions options)
    {
        bool is32 = insn.Class == OpClass.Jmp32;
        char r = is32 ? 'w' : 'r';
        int op = insn.Opcode & 0xf0;
        bool x = (insn.Opcode & 0x08) != 0;
        switch (op)
        {
            case (int)JumpOp.Call:
                return is32 || x ? Unknown : Call(insn, index, options);
            case (int)JumpOp.Exit:
                return is32 || x ? Unknown : "exit";
            case (int)JumpOp.Ja:
                if (x) return Unknown;
                return is32 ? $"gotol pc{S(insn.Immediate)}" : $"goto pc{S(insn.Offset)}";
            case 0xe0: // BPF_JCOND: may_goto, a bounded loop the verifier counts
                return !is32 && !x && insn.Src == 0 ? $"may_goto pc{S(insn.Offset)}" : Unknown;
            case 0xf0:
                return Unknown;
        }
        string compare = JumpOps[op >> 4];
        string operand = x ? $"{r}{insn.Src}" : $"0x{(uint)insn.Immediate:x}";
        return $"if {r}{insn.Dst} {compare} {operand} goto pc{S(insn.Offset)}";
    }

    private static string Call(Instruction insn, int index, DisassemblyOptions options)
    {
        if (insn.Src == 2 && index >= 0 && options.KfuncNames is { } kfuncs && kfuncs.TryGetValue(index, out var kfunc))
            return $"call {kfunc}#{I(insn.Immediate)}";
        switch (insn.Src)
        {
            case 1: // BPF_PSEUDO_CALL: a bpf-to-bpf call, imm is relative to the next instruction
                return $"call pc{S(insn.Immediate)}";
            case 0 or 2 when options.CallName?.Invoke(insn) is { } resolved:
                return $"call {resolved}#{I(insn.Immediate)}";
            case 0:
                return $"call {HelperName(insn.Immediate) ?? "unknown"}#{I(insn.Immediate)}";
            case 2: // BPF_PSEUDO_KFUNC_CALL: imm is the BTF id of the kernel function
                return $"call kernel-function#{I(insn.Immediate)}";
            default:
                return $"call unknown#{I(insn.Immediate)}";
        }
    }

    private static string I(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>printf's "%+d": a sign always.</summary>
    private static string S(int value) => (value >= 0 ? "+" : "") + value.ToString(CultureInfo.InvariantCulture);
}
