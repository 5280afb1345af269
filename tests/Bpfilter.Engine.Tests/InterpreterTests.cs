using System.Buffers.Binary;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Ebpf.Interpreter;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>The interpreter on hand-written programs: instruction semantics, maps, helpers, and every kind of fault.</summary>
public sealed class InterpreterTests
{
    private static Instruction I(byte opcode, int dst = 0, int src = 0, short off = 0, int imm = 0) => new(opcode, (byte)dst, (byte)src, off, imm);

    private static Instruction[] Imm64(int dst, ulong value) =>
        [I(0x18, dst, imm: unchecked((int)(uint)value)), I(0, imm: unchecked((int)(uint)(value >> 32)))];

    private static readonly Instruction Exit = I(0x95);

    /// <summary>ld_imm64 with BPF_PSEUDO_MAP_FD: which map comes from the program's map reference at this index.</summary>
    private static Instruction[] MapLoad(int dst) => [I(0x18, dst, 1), I(0)];

    private static EbpfProgram Program(IEnumerable<Instruction> code, ProgramType type = ProgramType.Xdp,
        IReadOnlyList<MapReference>? maps = null, IReadOnlyList<KfuncReference>? kfuncs = null) =>
        new("bpft_i", type, 0, code.ToArray(), maps ?? [], kfuncs ?? [], []);

    private static ExecutionResult Run(IEnumerable<Instruction> code, byte[]? packet = null, ProgramType type = ProgramType.Xdp,
        IReadOnlyDictionary<MapSpec, InMemoryMap>? maps = null, IReadOnlyList<MapReference>? references = null, InterpreterOptions? options = null)
    {
        var program = Program(code, type, references);
        return new EbpfInterpreter(program, maps ?? new Dictionary<MapSpec, InMemoryMap>(), options).Run(packet ?? new byte[60]);
    }

    private static InterpreterException Faults(IEnumerable<Instruction> code, byte[]? packet = null, ProgramType type = ProgramType.Xdp,
        IReadOnlyDictionary<MapSpec, InMemoryMap>? maps = null, IReadOnlyList<MapReference>? references = null, InterpreterOptions? options = null) =>
        Assert.Throws<InterpreterException>(() => Run(code, packet, type, maps, references, options));

    /// <summary>r0 = a; r1 = b; r0 op= r1 (opcode given); exit.</summary>
    private static ulong Compute(byte opcode, ulong a, ulong b, short off = 0) =>
        Run([.. Imm64(0, a), .. Imm64(1, b), I(opcode, 0, 1, off), Exit]).ReturnValue;

    // --- arithmetic ---------------------------------------------------------------------------------------

    [Theory]
    [InlineData(0x0f, 5UL, 7UL, 12UL)]                               // r0 += r1
    [InlineData(0x1f, 5UL, 7UL, 0xfffffffffffffffeUL)]               // r0 -= r1 wraps
    [InlineData(0x2f, 0x100000000UL, 0x10UL, 0x1000000000UL)]        // r0 *= r1
    [InlineData(0x3f, 100UL, 7UL, 14UL)]                             // r0 /= r1
    [InlineData(0x3f, 100UL, 0UL, 0UL)]                              // division by zero gives 0
    [InlineData(0x9f, 100UL, 7UL, 2UL)]                              // r0 %= r1
    [InlineData(0x9f, 100UL, 0UL, 100UL)]                            // modulo by zero leaves dst
    [InlineData(0x6f, 1UL, 65UL, 2UL)]                               // shift amounts are masked to 6 bits
    [InlineData(0x7f, 0x8000000000000000UL, 63UL, 1UL)]
    [InlineData(0xcf, 0x8000000000000000UL, 63UL, 0xffffffffffffffffUL)] // arithmetic shift keeps the sign
    [InlineData(0xaf, 0xff00UL, 0x0ff0UL, 0xf0f0UL)]
    [InlineData(0x0c, 0xffffffff00000005UL, 7UL, 12UL)]              // w0 += w1: the upper half is cleared
    [InlineData(0x1c, 5UL, 7UL, 0xfffffffeUL)]                       // w0 -= w1 wraps at 32 bits
    [InlineData(0x3c, 0x1_0000_0064UL, 0x1_0000_0007UL, 14UL)]       // 32-bit division ignores the upper halves
    [InlineData(0x9c, 0xffffffff00000064UL, 0UL, 100UL)]             // 32-bit modulo by zero: dst, zero-extended
    [InlineData(0xcc, 0x80000000UL, 31UL, 0xffffffffUL)]
    [InlineData(0xbc, 0xffffffffffffffffUL, 0xffffffff12345678UL, 0x12345678UL)] // w0 = w1
    public void Alu_operations_follow_the_kernel(byte opcode, ulong a, ulong b, ulong expected) =>
        Assert.Equal(expected, Compute(opcode, a, b));

    [Theory]
    [InlineData(0x3f, -7L, 2L, -3L)]            // sdiv truncates toward zero
    [InlineData(0x9f, -7L, 2L, -1L)]            // smod has the dividend's sign
    [InlineData(0x3f, long.MinValue, -1L, long.MinValue)]
    [InlineData(0x9f, long.MinValue, -1L, 0L)]
    [InlineData(0x3f, -7L, 0L, 0L)]
    public void Signed_division_uses_offset_1(byte opcode, long a, long b, long expected) =>
        Assert.Equal(expected, (long)Compute(opcode, (ulong)a, (ulong)b, off: 1));

    [Fact]
    public void Immediates_are_sign_extended_in_64_bit_operations_and_not_in_32_bit_ones()
    {
        Assert.Equal(0xffffffffffffffffUL, Run([I(0xb7, 0, imm: -1), Exit]).ReturnValue);   // r0 = -1
        Assert.Equal(0xffffffffUL, Run([I(0xb4, 0, imm: -1), Exit]).ReturnValue);           // w0 = -1
        Assert.Equal(0xfffffffffffffffbUL, Run([I(0xb7, 0, imm: 5), I(0x87), Exit]).ReturnValue); // r0 = -r0
    }

    [Theory]
    [InlineData(0xdc, 16, 0x1122334455667788UL, 0x8877UL)]               // be16
    [InlineData(0xdc, 32, 0x1122334455667788UL, 0x88776655UL)]           // be32
    [InlineData(0xdc, 64, 0x1122334455667788UL, 0x8877665544332211UL)]   // be64
    [InlineData(0xd4, 16, 0x1122334455667788UL, 0x7788UL)]               // le16 only truncates on this host
    [InlineData(0xd7, 32, 0x1122334455667788UL, 0x88776655UL)]           // bswap32 (ALU64)
    public void Byte_swaps(byte opcode, int bits, ulong value, ulong expected) =>
        Assert.Equal(expected, Run([.. Imm64(0, value), I(opcode, 0, imm: bits), Exit]).ReturnValue);

    [Theory]
    [InlineData(8, 0x80UL, 0xffffffffffffff80UL)]
    [InlineData(16, 0x7fffUL, 0x7fffUL)]
    [InlineData(32, 0x80000000UL, 0xffffffff80000000UL)]
    public void Movsx_sign_extends(short bits, ulong value, ulong expected) =>
        Assert.Equal(expected, Run([.. Imm64(1, value), I(0xbf, 0, 1, off: bits), Exit]).ReturnValue);

    [Fact]
    public void A_64_bit_compare_sign_extends_its_immediate_and_a_32_bit_compare_does_not()
    {
        // r1 = 0xc8004d0a (10.77.0.200 read little-endian); if r1 == imm → r0 = 1.
        Instruction[] Test(byte jeq) => [.. Imm64(1, 0xc8004d0aUL), I(0xb7, 0, imm: 0), I(jeq, 1, off: 1, imm: unchecked((int)0xc8004d0a)), I(0x05, off: 1), I(0xb7, 0, imm: 1), Exit];
        Assert.Equal(0UL, Run(Test(0x15)).ReturnValue); // JMP: the imm becomes 0xffffffffc8004d0a
        Assert.Equal(1UL, Run(Test(0x16)).ReturnValue); // JMP32
    }

    [Theory]
    [InlineData(0x2d, 5UL, 3UL, true)]               // jgt (unsigned)
    [InlineData(0x6d, 0xffffffffffffffffUL, 3UL, false)] // jsgt: -1 > 3 is false
    [InlineData(0x4d, 0b1010UL, 0b0010UL, true)]      // jset
    [InlineData(0xad, 3UL, 5UL, true)]               // jlt
    [InlineData(0xcd, 0xffffffffffffffffUL, 0UL, true)] // jslt
    [InlineData(0x6e, 0xffffffff_7fffffffUL, 0UL, true)] // jsgt (JMP32): only the low half counts
    public void Conditional_jumps(byte opcode, ulong a, ulong b, bool taken)
    {
        var result = Run([.. Imm64(1, a), .. Imm64(2, b), I(0xb7, 0, imm: 0), I(opcode, 1, 2, off: 1), I(0x05, off: 1), I(0xb7, 0, imm: 1), Exit]);
        Assert.Equal(taken ? 1UL : 0UL, result.ReturnValue);
    }

    // --- memory -------------------------------------------------------------------------------------------

    [Fact]
    public void Packet_pointers_come_from_the_context_and_reads_see_the_packet()
    {
        var packet = new byte[60];
        packet[12] = 0x08;
        var result = Run([I(0x61, 2, 1, 0), I(0x61, 3, 1, 4), I(0xbf, 0, 3), I(0x1f, 0, 2), I(0x69, 4, 2, 12), I(0x0f, 0, 4), Exit], packet);
        Assert.Equal(60UL + 8, result.ReturnValue); // data_end - data + the EtherType's first byte
    }

    [Fact]
    public void A_packet_read_past_the_end_names_the_instruction()
    {
        var error = Faults([I(0x61, 2, 1, 0), I(0x69, 0, 2, 100), Exit], new byte[60]);
        Assert.Equal("InterpreterFault", error.ErrorId);
        Assert.Equal(1, error.InstructionIndex);
        Assert.Contains("instruction 1 (", error.Message);
        Assert.Contains("r0 = *(u16 *)(r2 +100)", error.Message);
        Assert.Contains("out of bounds", error.Reason);
        Assert.Contains("the packet (60 bytes)", error.Reason);
        Assert.IsAssignableFrom<BpfilterException>(error);
    }

    [Fact]
    public void Packet_writes_change_the_packet_the_run_returns()
    {
        var result = Run([I(0x61, 2, 1, 0), I(0x72, 2, off: 3, imm: 0x5a), I(0xb7, 0, imm: 2), Exit]);
        Assert.Equal(0x5a, result.Packet[3]);
    }

    [Fact]
    public void Stack_bytes_round_trip_and_sign_extending_loads_extend()
    {
        var result = Run([I(0x7a, 10, off: -8, imm: -2), I(0x91, 0, 10, -8), Exit]); // *(u64*)(fp-8) = -2; r0 = *(s8*)(fp-8)
        Assert.Equal(0xfffffffffffffffeUL, result.ReturnValue);
        Assert.Equal(0xfeUL, Run([I(0x7a, 10, off: -8, imm: -2), I(0x71, 0, 10, -8), Exit]).ReturnValue);
    }

    [Fact]
    public void A_pointer_spilled_to_the_stack_is_still_a_pointer_when_filled()
    {
        var packet = new byte[20];
        packet[5] = 42;
        var result = Run([I(0x61, 2, 1, 0), I(0x7b, 10, 2, -16), I(0x79, 3, 10, -16), I(0x71, 0, 3, 5), Exit], packet);
        Assert.Equal(42UL, result.ReturnValue);
        // Overwriting half of the slot leaves a number, which is no pointer.
        var error = Faults([I(0x61, 2, 1, 0), I(0x7b, 10, 2, -16), I(0x62, 10, off: -16, imm: 0), I(0x79, 3, 10, -16), I(0x71, 0, 3, 5), Exit], packet);
        Assert.Contains("not a pointer", error.Reason);
    }

    [Theory]
    [InlineData(-520, "out of bounds")]   // below the 512-byte frame
    [InlineData(0, "out of bounds")]      // at the frame pointer itself
    [InlineData(-12, "misaligned")]       // an 8-byte store at fp-12
    public void Stack_accesses_are_checked(short offset, string reason) =>
        Assert.Contains(reason, Faults([I(0x7a, 10, off: offset, imm: 1), I(0xb7, 0), Exit]).Reason);

    [Fact]
    public void The_frame_pointer_is_read_only() =>
        Assert.Contains("r10", Faults([I(0xb7, 10, imm: 0), I(0xb7, 0), Exit]).Reason);

    [Fact]
    public void Context_fields_are_read_as_the_kernel_rewrites_them()
    {
        Assert.Equal(1UL, Run([I(0x61, 0, 1, 12), Exit]).ReturnValue); // ingress_ifindex: the loopback device of a test run
        Assert.Contains("whole field", Faults([I(0x69, 0, 1, 0), Exit]).Reason);          // a u16 load of data
        Assert.Contains("not within one field", Faults([I(0x61, 0, 1, 2), Exit]).Reason);  // half data, half data_end
        Assert.Contains("out of bounds", Faults([I(0x61, 0, 1, 24), Exit]).Reason);        // past struct xdp_md
        Assert.Contains("may not write", Faults([I(0x62, 1, off: 12, imm: 5), I(0xb7, 0), Exit]).Reason);
    }

    [Fact]
    public void The_socket_buffer_layout_puts_the_packet_at_76_and_80_and_lets_mark_be_written()
    {
        var result = Run([I(0x61, 2, 1, 76), I(0x61, 3, 1, 80), I(0xbf, 0, 3), I(0x1f, 0, 2), I(0x62, 1, off: 8, imm: 7), I(0x61, 4, 1, 8), I(0x0f, 0, 4), I(0x61, 5, 1, 0), I(0x0f, 0, 5), Exit],
            new byte[40], ProgramType.SchedCls);
        Assert.Equal(40UL + 7 + 40, result.ReturnValue); // data_end - data, mark, len
    }

    // --- faults -------------------------------------------------------------------------------------------

    [Fact]
    public void Reading_a_register_that_holds_nothing_fails() =>
        Assert.Contains("R5 !read_ok", Faults([I(0xbf, 0, 5), Exit]).Reason);

    [Fact]
    public void Exiting_without_r0_fails() => Assert.Contains("R0 !read_ok", Faults([Exit]).Reason);

    [Fact]
    public void A_loop_ends_at_the_step_limit()
    {
        var error = Faults([I(0xb7, 0), I(0x07, 0, imm: 1), I(0x05, off: -2), Exit], options: new InterpreterOptions { StepLimit = 10_000 });
        Assert.Contains("10,000 instructions", error.Reason);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(-5)]
    public void A_jump_outside_the_program_fails(short offset) =>
        Assert.Contains("outside the program", Faults([I(0xb7, 0), I(0x05, off: offset), Exit]).Reason);

    [Fact]
    public void A_jump_into_a_64_bit_immediate_fails() =>
        Assert.Contains("second half", Faults([I(0x05, off: 1), .. Imm64(0, 1), Exit]).Reason);

    [Fact]
    public void Falling_off_the_end_fails() => Assert.Contains("fell through", Faults([I(0xb7, 0)]).Reason);

    [Theory]
    [InlineData(0x8f)] // neg with a register source
    [InlineData(0xe7)] // no such ALU operation
    [InlineData(0x20)] // legacy BPF_ABS load
    [InlineData(0xf5)] // no such jump
    public void Unknown_or_unsupported_opcodes_fail(byte opcode) =>
        Assert.Equal(0, Faults([I(opcode, 0, 0, imm: 1), I(0xb7, 0), Exit]).InstructionIndex);

    [Fact]
    public void Constant_division_by_zero_is_refused_like_the_verifier_does() =>
        Assert.Contains("constant 0", Faults([I(0xb7, 0, imm: 1), I(0x37, 0, imm: 0), Exit]).Reason);

    [Fact]
    public void An_unknown_helper_fails_with_its_id() =>
        Assert.Contains("helper #9999", Faults([I(0x85, imm: 9999), Exit]).Reason);

    [Fact]
    public void Helper_calls_clobber_r1_to_r5()
    {
        var error = Faults([I(0xb7, 3, imm: 1), I(0x85, imm: 5), I(0xbf, 0, 3), Exit]);
        Assert.Equal(2, error.InstructionIndex);
    }

    [Fact]
    public void Dereferencing_a_number_or_a_map_fails()
    {
        Assert.Contains("the number 4096", Faults([I(0xb7, 2, imm: 4096), I(0x61, 0, 2), Exit]).Reason);
        var spec = new MapSpec("m", MapType.Array, 4, 8, 1);
        var maps = new Dictionary<MapSpec, InMemoryMap> { [spec] = InMemoryMap.Create(spec) };
        Assert.Contains("map m itself", Faults([.. MapLoad(1), I(0x61, 0, 1), Exit], maps: maps, references: [new MapReference(0, spec)]).Reason);
    }

    // --- maps and helpers ----------------------------------------------------------------------------------

    /// <summary>*(u32*)(fp-4) = key; r1 = map; r2 = fp-4; call lookup; if r0 == 0 return 0xdead; return *(u64*)r0.</summary>
    private static Instruction[] LookupAndRead(uint key) =>
    [
        I(0x62, 10, off: -4, imm: (int)key), .. MapLoad(1), I(0xbf, 2, 10), I(0x07, 2, imm: -4), I(0x85, imm: 1),
        I(0x55, 0, off: 2, imm: 0), I(0xb7, 0, imm: 0xdead), Exit, I(0x79, 0, 0, 0), Exit,
    ];

    [Fact]
    public void Map_lookups_return_value_pointers_or_null()
    {
        var spec = new MapSpec("h", MapType.Hash, 4, 8, 4);
        var map = InMemoryMap.Create(spec);
        Assert.Equal(0, map.Update(BitConverter.GetBytes(7u), BitConverter.GetBytes(1234UL)));
        var maps = new Dictionary<MapSpec, InMemoryMap> { [spec] = map };
        MapReference[] refs = [new(1, spec)];
        Assert.Equal(1234UL, Run(LookupAndRead(7), maps: maps, references: refs).ReturnValue);
        Assert.Equal(0xdeadUL, Run(LookupAndRead(8), maps: maps, references: refs).ReturnValue);
    }

    [Fact]
    public void Reading_past_a_map_value_fails()
    {
        var spec = new MapSpec("a", MapType.Array, 4, 4, 2);
        var maps = new Dictionary<MapSpec, InMemoryMap> { [spec] = InMemoryMap.Create(spec) };
        var error = Faults(LookupAndRead(1), maps: maps, references: [new MapReference(1, spec)]);
        Assert.Contains("a value of map a (4 bytes)", error.Reason);
    }

    [Fact]
    public void An_unchecked_null_lookup_result_fails()
    {
        var spec = new MapSpec("h", MapType.Hash, 4, 8, 4);
        var maps = new Dictionary<MapSpec, InMemoryMap> { [spec] = InMemoryMap.Create(spec) };
        Instruction[] code = [I(0x62, 10, off: -4, imm: 1), .. MapLoad(1), I(0xbf, 2, 10), I(0x07, 2, imm: -4), I(0x85, imm: 1), I(0x79, 0, 0, 0), Exit];
        Assert.Contains("NULL", Faults(code, maps: maps, references: [new MapReference(1, spec)]).Reason);
    }

    [Fact]
    public void Per_cpu_arrays_give_the_running_cpu_its_own_value()
    {
        var spec = new MapSpec("p", MapType.PerCpuArray, 4, 16, 2);
        var map = InMemoryMap.Create(spec, cpuCount: 2);
        var maps = new Dictionary<MapSpec, InMemoryMap> { [spec] = map };
        // value.packets += 1 on CPU 1
        Instruction[] code =
        [
            I(0x62, 10, off: -4, imm: 1), .. MapLoad(1), I(0xbf, 2, 10), I(0x07, 2, imm: -4), I(0x85, imm: 1),
            I(0x15, 0, off: 3, imm: 0), I(0x79, 1, 0, 0), I(0x07, 1, imm: 1), I(0x7b, 0, 1, 0), I(0xb7, 0, imm: 2), Exit,
        ];
        new EbpfInterpreter(Program(code, maps: [new MapReference(1, spec)]), maps, new InterpreterOptions { Cpu = 1 }).Run(new byte[20]);
        var values = map.LookupPerCpu(1);
        Assert.Equal((0UL, 1UL), (BinaryPrimitives.ReadUInt64LittleEndian(values[0]), BinaryPrimitives.ReadUInt64LittleEndian(values[1])));
        Assert.Equal(32, map.UserValueSize);
    }

    [Fact]
    public void Map_updates_and_deletes_from_the_program_follow_the_kernels_flags()
    {
        var spec = new MapSpec("h", MapType.Hash, 4, 8, 1);
        var map = InMemoryMap.Create(spec);
        var maps = new Dictionary<MapSpec, InMemoryMap> { [spec] = map };
        // key 5 → value 99 with flags in r4; returns the helper's result.
        Instruction[] Update(int key, int flags) =>
        [
            I(0x62, 10, off: -4, imm: key), I(0x7a, 10, off: -16, imm: 99), .. MapLoad(1), I(0xbf, 2, 10), I(0x07, 2, imm: -4),
            I(0xbf, 3, 10), I(0x07, 3, imm: -16), I(0xb7, 4, imm: flags), I(0x85, imm: 2), Exit,
        ];
        MapReference[] refs = [new(2, spec)];
        Assert.Equal(unchecked((ulong)-2L), Run(Update(5, 2), maps: maps, references: refs).ReturnValue);  // BPF_EXIST, missing: -ENOENT
        Assert.Equal(0UL, Run(Update(5, 1), maps: maps, references: refs).ReturnValue);                     // BPF_NOEXIST
        Assert.Equal(unchecked((ulong)-17L), Run(Update(5, 1), maps: maps, references: refs).ReturnValue); // -EEXIST
        Assert.Equal(unchecked((ulong)-7L), Run(Update(6, 0), maps: maps, references: refs).ReturnValue);  // full: -E2BIG
        Assert.Equal(99UL, BinaryPrimitives.ReadUInt64LittleEndian(map.LookupPerCpu(5)[0]));
        Instruction[] delete = [I(0x62, 10, off: -4, imm: 5), .. MapLoad(1), I(0xbf, 2, 10), I(0x07, 2, imm: -4), I(0x85, imm: 3), Exit];
        Assert.Equal(0UL, Run(delete, maps: maps, references: [new(1, spec)]).ReturnValue);
        Assert.Empty(map.Keys());
    }

    [Fact]
    public void Lpm_tries_find_the_longest_prefix()
    {
        var spec = new MapSpec("cidr", MapType.LpmTrie, 8, 4, 16, Flags: 1);
        var map = InMemoryMap.Create(spec);
        byte[] Key(int length, string address) => [.. BitConverter.GetBytes((uint)length), .. System.Net.IPAddress.Parse(address).GetAddressBytes()];
        Assert.Equal(0, map.Update(Key(16, "10.1.0.0"), BitConverter.GetBytes(16u)));
        Assert.Equal(0, map.Update(Key(24, "10.1.2.77"), BitConverter.GetBytes(24u))); // host bits are ignored
        Assert.Equal(22, map.Update(Key(33, "10.1.2.0"), BitConverter.GetBytes(33u))); // EINVAL
        var value = new byte[4];
        Assert.True(map.Lookup(Key(32, "10.1.2.3"), value));
        Assert.Equal(24u, BitConverter.ToUInt32(value));
        Assert.True(map.Lookup(Key(32, "10.1.9.9"), value));
        Assert.Equal(16u, BitConverter.ToUInt32(value));
        Assert.False(map.Lookup(Key(32, "10.2.0.1"), value));
        Assert.Equal(2, map.Delete(Key(24, "10.1.3.0")));
        Assert.Equal(0, map.Delete(Key(24, "10.1.2.0")));
    }

    [Theory]
    [InlineData(MapType.Array, 8u, 4u, 1u, 0u, "array keys must be 4 bytes")]
    [InlineData(MapType.Hash, 4u, 4u, 0u, 0u, "max_entries is 0")]
    [InlineData(MapType.LpmTrie, 8u, 4u, 16u, 0u, "BPF_F_NO_PREALLOC")]
    [InlineData(MapType.LpmTrie, 4u, 4u, 16u, 1u, "key_size 4")]
    public void Map_specs_the_kernel_refuses_are_refused(MapType type, uint keySize, uint valueSize, uint maxEntries, uint flags, string reason)
    {
        var error = Assert.Throws<BpfilterException>(() => InMemoryMap.Create(new MapSpec("bad", type, keySize, valueSize, maxEntries, flags)));
        Assert.Equal("MapSpecInvalid", error.ErrorId);
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void Array_maps_refuse_what_the_kernel_refuses()
    {
        var map = InMemoryMap.Create(new MapSpec("a", MapType.Array, 4, 4, 2));
        Assert.Equal(7, map.Update(BitConverter.GetBytes(2u), new byte[4]));     // E2BIG
        Assert.Equal(17, map.Update(BitConverter.GetBytes(0u), new byte[4], 1)); // EEXIST
        Assert.Equal(22, map.Delete(BitConverter.GetBytes(0u)));                 // EINVAL
        Assert.False(map.Lookup(BitConverter.GetBytes(2u), new byte[4]));
    }

    [Fact]
    public void Map_value_addresses_from_ld_imm64_point_into_element_0()
    {
        var spec = new MapSpec("cfg", MapType.Array, 4, 16, 1);
        var map = InMemoryMap.Create(spec);
        map.Update(BitConverter.GetBytes(0u), [.. new byte[8], .. BitConverter.GetBytes(77UL)]);
        var maps = new Dictionary<MapSpec, InMemoryMap> { [spec] = map };
        Instruction[] code = [I(0x18, 1, 2, imm: 0), I(0, imm: 8), I(0x79, 0, 1, 0), Exit];
        Assert.Equal(77UL, Run(code, maps: maps, references: [new MapReference(0, spec)]).ReturnValue);
    }

    [Fact]
    public void Atomics_add_fetch_exchange_and_compare()
    {
        Instruction[] code =
        [
            I(0x7a, 10, off: -8, imm: 10),
            I(0xb7, 1, imm: 5), I(0xdb, 10, 1, -8, 0x01),            // r1 = atomic64_fetch_add(fp-8, 5): r1 = 10, mem 15
            I(0xb7, 0, imm: 15), I(0xb7, 2, imm: 40), I(0xdb, 10, 2, -8, 0xf1), // cmpxchg: mem == r0, so mem = 40, r0 = 15
            I(0xb7, 3, imm: 1), I(0xdb, 10, 3, -8, 0xe1),             // r3 = xchg(fp-8, 1): r3 = 40, mem 1
            I(0x79, 4, 10, -8),
            // r0 = r1 * 1000000 + r0 * 10000 + r3 * 100 + r4
            I(0x27, 1, imm: 1000000), I(0x27, 0, imm: 10000), I(0x27, 3, imm: 100), I(0x0f, 0, 1), I(0x0f, 0, 3), I(0x0f, 0, 4), Exit,
        ];
        Assert.Equal(10UL * 1000000 + 15 * 10000 + 40 * 100 + 1, Run(code).ReturnValue);
    }

    [Fact]
    public void Atomics_on_the_packet_are_refused() =>
        Assert.Contains("only the stack and map values", Faults([I(0x61, 2, 1, 0), I(0xb7, 3, imm: 1), I(0xdb, 2, 3, 0, 0), I(0xb7, 0), Exit]).Reason);

    [Fact]
    public void Bpf_to_bpf_calls_have_their_own_frame_and_keep_r6_to_r9()
    {
        Instruction[] code =
        [
            I(0xb7, 6, imm: 3), I(0xb7, 1, imm: 21), I(0x85, 0, 1, imm: 2), // call pc+2
            I(0x0f, 0, 6), Exit,                                             // r0 += r6
            I(0xb7, 6, imm: 100), I(0x7b, 10, 1, -8), I(0x79, 0, 10, -8), I(0x27, 0, imm: 2), Exit, // callee: r0 = r1 * 2, r6 clobbered
        ];
        Assert.Equal(45UL, Run(code).ReturnValue);
    }

    [Fact]
    public void Time_random_and_cpu_helpers_follow_the_options()
    {
        var options = new InterpreterOptions { Clock = () => 123456789, Cpu = 0 };
        Assert.Equal(123456789UL, Run([I(0x85, imm: 5), Exit], options: options).ReturnValue);
        Assert.Equal(0UL, Run([I(0x85, imm: 8), Exit], options: options).ReturnValue);
        var random = Run([I(0x85, imm: 7), Exit]).ReturnValue;
        Assert.Equal(random, Run([I(0x85, imm: 7), Exit]).ReturnValue); // the same seed repeats
        Assert.True(random <= uint.MaxValue);
    }

    [Fact]
    public void Trace_printk_writes_a_line()
    {
        var text = "n=%d\0"u8.ToArray();
        var result = Run(
        [
            .. Imm64(1, BitConverter.ToUInt32(text, 0) | (ulong)text[4] << 32), I(0x7b, 10, 1, -8), I(0xbf, 1, 10), I(0x07, 1, imm: -8),
            I(0xb7, 2, imm: 5), I(0xb7, 3, imm: -7), I(0x85, imm: 6), I(0xb7, 0, imm: 2), Exit,
        ]);
        Assert.Equal(["n=-7"], result.TraceOutput);
    }

    [Fact]
    public void Ring_buffers_take_records_from_output_and_reserve_submit()
    {
        var spec = new MapSpec("events", InMemoryMap.RingBufferType, 0, 0, 4096);
        var ring = (RingBufferMap)InMemoryMap.Create(spec);
        var maps = new Dictionary<MapSpec, InMemoryMap> { [spec] = ring };
        Instruction[] output = [I(0x7a, 10, off: -8, imm: 0x1234), .. MapLoad(1), I(0xbf, 2, 10), I(0x07, 2, imm: -8), I(0xb7, 3, imm: 8), I(0xb7, 4, imm: 0), I(0x85, imm: 130), Exit];
        Assert.Equal(0UL, Run(output, maps: maps, references: [new MapReference(1, spec)]).ReturnValue);
        Instruction[] reserve =
        [
            .. MapLoad(1), I(0xb7, 2, imm: 4), I(0xb7, 3, imm: 0), I(0x85, imm: 131), I(0x55, 0, off: 2, imm: 0), I(0xb7, 0, imm: 1), Exit,
            I(0x62, 0, off: 0, imm: 0x55), I(0xbf, 1, 0), I(0xb7, 2, imm: 0), I(0x85, imm: 132), I(0xb7, 0, imm: 0), Exit,
        ];
        Assert.Equal(0UL, Run(reserve, maps: maps, references: [new MapReference(0, spec)]).ReturnValue);
        var records = ring.Consume();
        Assert.Equal(2, records.Count);
        Assert.Equal(0x1234UL, BitConverter.ToUInt64(records[0]));
        Assert.Equal(0x55u, BitConverter.ToUInt32(records[1]));
        // A reservation that is never submitted is a bug the verifier would refuse.
        Instruction[] leak = [.. MapLoad(1), I(0xb7, 2, imm: 4), I(0xb7, 3, imm: 0), I(0x85, imm: 131), I(0xb7, 0, imm: 0), Exit];
        Assert.Contains("neither submitted nor discarded", Faults(leak, maps: maps, references: [new MapReference(0, spec)]).Reason);
    }

    [Fact]
    public void Dynptr_slices_of_a_netfilter_packet_are_read_only_and_null_past_the_end()
    {
        var packet = new byte[30];
        packet[9] = 17;
        KfuncReference[] kfuncs = [new(4, "bpf_dynptr_from_skb"), new(10, "bpf_dynptr_slice")];
        Instruction[] Slice(int offset, int size, bool write) =>
        [
            I(0x79, 1, 1, 8), I(0xb7, 2, imm: 0), I(0xbf, 3, 10), I(0x07, 3, imm: -16), I(0x85, 0, 2, imm: 1000), // from_skb(ctx->skb, 0, fp-16)
            I(0xbf, 1, 10), I(0x07, 1, imm: -16), I(0xb7, 2, imm: offset), I(0xb7, 3, imm: 0), I(0xb7, 4, imm: size), I(0x85, 0, 2, imm: 1001), // slice(fp-16, offset, NULL, size)
            I(0x55, 0, off: 2, imm: 0), I(0xb7, 0, imm: 0xff), Exit,
            write ? I(0x72, 0, off: 0, imm: 1) : I(0xb7, 1, imm: 0), I(0x71, 0, 0, 0), Exit,
        ];
        var program = new EbpfProgram("bpft_nf", ProgramType.Netfilter, 45, Slice(9, 1, false), [], kfuncs, []);
        Assert.Equal(17UL, new EbpfInterpreter(program, new Dictionary<MapSpec, InMemoryMap>()).Run(packet).ReturnValue);
        program = new EbpfProgram("bpft_nf", ProgramType.Netfilter, 45, Slice(25, 8, false), [], kfuncs, []);
        Assert.Equal(0xffUL, new EbpfInterpreter(program, new Dictionary<MapSpec, InMemoryMap>()).Run(packet).ReturnValue);
        program = new EbpfProgram("bpft_nf", ProgramType.Netfilter, 45, Slice(9, 1, true), [], kfuncs, []);
        Assert.Contains("read-only", Assert.Throws<InterpreterException>(() => new EbpfInterpreter(program, new Dictionary<MapSpec, InMemoryMap>()).Run(packet)).Reason);
    }

    [Fact]
    public void A_socket_buffer_is_reachable_only_through_kernel_functions() =>
        Assert.Contains("struct sk_buff", Faults([I(0x79, 1, 1, 8), I(0x61, 0, 1, 0), Exit], type: ProgramType.Netfilter).Reason);

    [Fact]
    public void A_map_the_program_names_must_be_given()
    {
        var spec = new MapSpec("missing", MapType.Array, 4, 4, 1);
        var error = Assert.Throws<InterpreterException>(() =>
            new EbpfInterpreter(Program([.. Imm64(1, 0), I(0xb7, 0), Exit], maps: [new MapReference(0, spec)]), new Dictionary<MapSpec, InMemoryMap>()));
        Assert.Contains("missing", error.Reason);
    }

    [Fact]
    public void The_path_records_every_executed_instruction()
    {
        var result = Run([I(0xb7, 0, imm: 1), I(0x05, off: 1), I(0xb7, 0, imm: 2), Exit], options: new InterpreterOptions { RecordPath = true });
        Assert.Equal([0, 1, 3], result.Path);
        Assert.Equal(3, result.Steps);
        Assert.Equal(1u, result.ReturnCode);
    }
}
