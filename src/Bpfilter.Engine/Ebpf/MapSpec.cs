namespace Bpfilter.Engine.Ebpf;

/// <summary>Kernel map types used by Bpfilter (enum bpf_map_type).</summary>
public enum MapType : uint
{
    Hash = 1,
    Array = 2,
    PerCpuArray = 6,
    LpmTrie = 11,
}

/// <summary>What a program needs of a map; the kernel layer creates it and the loader patches its fd in.</summary>
/// <param name="Name">Kernel map name: at most 15 characters of [A-Za-z0-9_.].</param>
public sealed record MapSpec(string Name, MapType Type, uint KeySize, uint ValueSize, uint MaxEntries, uint Flags = 0);
