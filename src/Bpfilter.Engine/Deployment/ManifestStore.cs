using System.Buffers.Binary;
using System.Security.Cryptography;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;

namespace Bpfilter.Engine.Deployment;

/// <summary>
/// Keeps a manifest in a pinned BPF array map: bpffs holds no regular files, and a map pinned beside the
/// links lives exactly as long as they do. Slot 0 holds a header (magic, length, SHA-256); the JSON follows
/// in 4 KiB slots. The map is frozen once written, so user space can no longer change it. The checksum finds a
/// manifest that was cut short or changed; one made up whole is kept out by the directory and pin checks
/// (<see cref="PrivatePaths"/>): only root can write where manifests are read from.
/// </summary>
internal static class ManifestStore
{
    private const int SlotBytes = 4096;
    private const uint Magic = 0x4d465042; // "BPFM"
    private const int MaxBytes = 16 << 20;

    public static BpfMap Write(Manifest manifest)
    {
        var json = manifest.ToJson();
        int dataSlots = (json.Length + SlotBytes - 1) / SlotBytes;
        var map = BpfMap.Create(new MapSpec("bpfilter_mf", MapType.Array, 4, SlotBytes, (uint)(1 + dataSlots)));
        try
        {
            var slot = new byte[SlotBytes];
            BinaryPrimitives.WriteUInt32LittleEndian(slot, Magic);
            BinaryPrimitives.WriteUInt32LittleEndian(slot.AsSpan(4), (uint)json.Length);
            SHA256.HashData(json, slot.AsSpan(8, 32));
            Put(map, 0, slot);
            for (int i = 0; i < dataSlots; i++)
            {
                Array.Clear(slot);
                json.AsSpan(i * SlotBytes, Math.Min(SlotBytes, json.Length - i * SlotBytes)).CopyTo(slot);
                Put(map, (uint)(i + 1), slot);
            }
            map.Freeze();
            return map;
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>Reads and checks the manifest pinned for <paramref name="deployment"/> (or another pin of that form); null when there is none.</summary>
    public static Manifest? Read(string deployment, string pin = DeploymentPaths.ManifestPin)
    {
        DeploymentPaths.CheckTrusted(deployment, pin);
        using var map = BpfMap.OpenPinned(DeploymentPaths.Pin(deployment, pin), readOnly: true);
        if (map is null) return null;
        if (map.Type != MapType.Array || map.ValueSize != SlotBytes) throw Corrupt(deployment, "its map has the wrong shape");
        var slot = new byte[SlotBytes];
        Span<byte> key = stackalloc byte[4];
        if (!map.Lookup(key, slot) || BinaryPrimitives.ReadUInt32LittleEndian(slot) != Magic) throw Corrupt(deployment, "its header is missing");
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(slot.AsSpan(4));
        if (length is <= 0 or > MaxBytes) throw Corrupt(deployment, "its length is out of range");
        var expectedHash = slot.AsSpan(8, 32).ToArray();
        var json = new byte[length];
        for (int i = 0; i * SlotBytes < length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)(i + 1));
            if (!map.Lookup(key, slot)) throw Corrupt(deployment, "it is truncated");
            slot.AsSpan(0, Math.Min(SlotBytes, length - i * SlotBytes)).CopyTo(json.AsSpan(i * SlotBytes));
        }
        if (!SHA256.HashData(json).AsSpan().SequenceEqual(expectedHash)) throw Corrupt(deployment, "its checksum does not match its content");
        return Manifest.FromJson(json, deployment);
    }

    private static void Put(BpfMap map, uint index, byte[] value)
    {
        Span<byte> key = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(key, index);
        map.Update(key, value);
    }

    private static BpfilterException Corrupt(string deployment, string why) =>
        new("ManifestCorrupt", FailureCategory.InvalidData,
            $"the manifest of deployment '{deployment}' cannot be trusted: {why}. Unpublish-BpfProgram -Name {deployment} removes the deployment");
}
