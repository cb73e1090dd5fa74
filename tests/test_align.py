import numpy as np
import pytest

from facecluster.align import ARCFACE_TEMPLATE, CROP_SIZE, align_face, align_faces, similarity_transform


def apply(matrix, points):
    points = np.asarray(points, float)
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_identity_on_template():
    m = similarity_transform(ARCFACE_TEMPLATE, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-9)


@pytest.mark.parametrize("angle,scale,shift", [(0.0, 2.0, (10, -5)), (30.0, 0.5, (100, 40)), (-75.0, 3.3, (0, 0))])
def test_recovers_a_known_similarity(angle, scale, shift):
    a = np.deg2rad(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    src = (ARCFACE_TEMPLATE @ (scale * rot).T) + shift
    m = similarity_transform(src, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(apply(m, src), ARCFACE_TEMPLATE, atol=1e-6)


def test_never_reflects():
    mirrored = ARCFACE_TEMPLATE * [-1, 1]
    m = similarity_transform(mirrored, ARCFACE_TEMPLATE)
    assert np.linalg.det(m[:, :2]) > 0


def test_align_face_puts_landmarks_on_the_template():
    # Paint five dots where the landmarks are in a larger, shifted, scaled image
    # and check that they land on the template points in the crop.
    image = np.zeros((400, 400, 3), np.uint8)
    marks = ARCFACE_TEMPLATE * 2.0 + [90, 60]
    for x, y in marks:
        image[int(round(y)) - 1 : int(round(y)) + 2, int(round(x)) - 1 : int(round(x)) + 2] = 255
    crop = align_face(image, marks)
    assert crop.shape == (CROP_SIZE, CROP_SIZE, 3)
    for x, y in ARCFACE_TEMPLATE:
        assert crop[int(round(y)), int(round(x))].max() > 100


def test_align_faces_empty():
    assert align_faces(np.zeros((10, 10, 3), np.uint8), np.zeros((0, 5, 2))).shape == (0, CROP_SIZE, CROP_SIZE, 3)
